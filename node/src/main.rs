fn main() {
    eprintln!("faultline-node: not built yet");
    std::process::exit(3);
}

//! The store's files over HTTP: a listing for a directory, the file itself otherwise, and
//! nothing outside the store, whether asked for with `..` or reached through a symlink.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tower_http::services::ServeFile;

use super::html::{escape, file_url, page};

/// Why a path is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It leads out of the store.
    OutsideStore,
    /// Nothing is there.
    NotFound,
}

/// The real path of `relative` (as in the URL, `/`-separated, decoded) inside `root`, which
/// must be canonical.
pub fn resolve(root: &Path, relative: &str) -> Result<PathBuf, Refusal> {
    let mut path = root.to_path_buf();
    for segment in relative.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(Refusal::OutsideStore),
            name => path.push(name),
        }
    }
    // Symlinks resolved, the path must still be in the store.
    let real = path.canonicalize().map_err(|_| Refusal::NotFound)?;
    if real.starts_with(root) {
        Ok(real)
    } else {
        Err(Refusal::OutsideStore)
    }
}

/// Answers a request for `relative` inside the store at `root` (canonical).
pub async fn serve(root: &Path, relative: &str, request: Request) -> Response {
    let path = match resolve(root, relative) {
        Ok(path) => path,
        Err(Refusal::OutsideStore) => {
            return (StatusCode::FORBIDDEN, "outside the store\n").into_response();
        }
        Err(Refusal::NotFound) => {
            return (StatusCode::NOT_FOUND, "no such file in the store\n").into_response();
        }
    };
    if path.is_dir() {
        return match listing(root, &path) {
            Ok(html) => Html(html).into_response(),
            Err(e) => error(&format!("listing {}: {e}", path.display())),
        };
    }
    match ServeFile::new(&path).try_call(request).await {
        Ok(response) => {
            let mut response = response.map(Body::new);
            if path
                .extension()
                .is_some_and(|ext| ext == "jsonl" || ext == "log")
            {
                // Histories and node logs are text to read in the browser, not to download.
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
            }
            response
        }
        Err(e) => error(&format!("reading {}: {e}", path.display())),
    }
}

fn error(message: &str) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{message}\n")).into_response()
}

/// A directory's entries, directories first, each linked; `dir` is inside `root`.
fn listing(root: &Path, dir: &Path) -> std::io::Result<String> {
    let relative: Vec<String> = dir
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        // Through symlinks (`latest` is a directory), but a broken one is still listed.
        let metadata = std::fs::metadata(entry.path()).or_else(|_| entry.metadata())?;
        entries.push((
            !metadata.is_dir(),
            entry.file_name().to_string_lossy().into_owned(),
            metadata.len(),
        ));
    }
    entries.sort();

    let title = format!("store/{}", relative.join("/"));
    let mut body = format!(
        "<h1>{}</h1>\n<p><a href=\"/\">all runs</a></p>\n<table>\n",
        escape(&title)
    );
    if let Some((_, parent)) = relative.split_last() {
        let _ = writeln!(
            body,
            "<tr><td><a href=\"{}/\">..</a></td><td></td></tr>",
            file_url(parent.iter().map(String::as_str))
        );
    }
    for (is_file, name, size) in entries {
        let url = file_url(relative.iter().map(String::as_str).chain([name.as_str()]));
        let (slash, size) = if is_file {
            ("", size.to_string())
        } else {
            ("/", String::new())
        };
        let _ = writeln!(
            body,
            "<tr><td><a href=\"{url}{slash}\">{}{slash}</a></td><td class=\"number\">{size}</td></tr>",
            escape(&name)
        );
    }
    body.push_str("</table>\n");
    Ok(page(&title, &body))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn paths_stay_inside_the_store() {
        let outside = tempfile::tempdir().unwrap();
        let store = outside.path().join("store");
        fs::create_dir_all(store.join("t/1")).unwrap();
        fs::write(store.join("t/1/results.json"), "{}").unwrap();
        fs::write(outside.path().join("secret"), "no").unwrap();
        std::os::unix::fs::symlink("t/1", store.join("latest")).unwrap();
        std::os::unix::fs::symlink(outside.path(), store.join("escape")).unwrap();
        let root = store.canonicalize().unwrap();

        assert_eq!(
            resolve(&root, "t/1/results.json"),
            Ok(root.join("t/1/results.json"))
        );
        assert_eq!(resolve(&root, ""), Ok(root.clone()));
        assert_eq!(
            resolve(&root, "latest/results.json"),
            Ok(root.join("t/1/results.json"))
        );
        for attempt in [
            "../secret",
            "t/../../secret",
            "t/1/../../..",
            "escape/secret",
        ] {
            assert_eq!(
                resolve(&root, attempt),
                Err(Refusal::OutsideStore),
                "{attempt}"
            );
        }
        assert_eq!(resolve(&root, "t/2"), Err(Refusal::NotFound));
    }

    #[test]
    fn a_listing_links_every_entry_directories_first() {
        let store = tempfile::tempdir().unwrap();
        let root = store.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("t/1/nodes")).unwrap();
        fs::write(root.join("t/1/a b.json"), "12345").unwrap();
        std::os::unix::fs::symlink("t/1", root.join("latest")).unwrap();
        let html = listing(&root, &root.join("t/1")).unwrap();
        assert!(html.contains("<h1>store/t/1</h1>"), "{html}");
        assert!(html.contains("<a href=\"/files/t/\">..</a>"), "{html}");
        let nodes = html
            .find("<a href=\"/files/t/1/nodes/\">nodes/</a>")
            .unwrap();
        let file = html
            .find("<a href=\"/files/t/1/a%20b.json\">a b.json</a></td><td class=\"number\">5<")
            .unwrap();
        assert!(nodes < file);

        let top = listing(&root, &root).unwrap();
        assert!(top.contains("<h1>store/</h1>"), "{top}");
        assert!(!top.contains(">..<"), "{top}");
        assert!(
            top.contains("<a href=\"/files/latest/\">latest/</a>"),
            "{top}"
        );
    }
}

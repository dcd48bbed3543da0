//! The report page: one HTML file that needs no network, its stylesheet, scripts and data
//! inlined. The assets are real `.css` and `.js` files beside this one, so they can be read
//! and linted as such.

use anyhow::{Context, Result};

use super::page_data::PageData;

const TEMPLATE: &str = include_str!("assets/report.html");
const STYLE: &str = include_str!("assets/report.css");
/// The scripts, in the order they are inlined (later ones use earlier ones).
const SCRIPTS: [&str; 10] = [
    include_str!("assets/format.js"),
    include_str!("assets/data.js"),
    include_str!("assets/time_chart.js"),
    include_str!("assets/timeline.js"),
    include_str!("assets/latency_rate.js"),
    include_str!("assets/node_states.js"),
    include_str!("assets/clocks.js"),
    include_str!("assets/counterexamples.js"),
    include_str!("assets/summary.js"),
    include_str!("assets/main.js"),
];

/// The whole page for `data`.
pub fn render(data: &PageData) -> Result<String> {
    let json = serde_json::to_string(data).context("encoding the report's data")?;
    // `<` only occurs inside JSON strings, where `\u003c` means the same; so no value (a
    // key named `</script>`, say) can end the element that holds the data.
    let json = json.replace('<', "\\u003c");
    let title = format!("{} · {} · faultline", data.name, data.verdict);
    Ok(fill(
        TEMPLATE,
        &[
            ("title", &escape_html(&title)),
            ("style", STYLE),
            ("script", &SCRIPTS.join("\n")),
            ("data", &json),
        ],
    ))
}

/// Replaces each `{{name}}` of `template` (only of the template: values are not searched)
/// by its value; a name with no value is left as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let size = template.len() + values.iter().map(|(_, v)| v.len()).sum::<usize>();
    let mut out = String::with_capacity(size);
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let value = after.find("}}").and_then(|close| {
            let name = &after[..close];
            let value = values.iter().find(|(n, _)| *n == name)?.1;
            Some((value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_values_are_not_searched() {
        let filled = fill(
            "<{{a}}|{{b}}|{{missing}}|{{a}}>",
            &[("a", "{{b}}"), ("b", "x")],
        );
        assert_eq!(filled, "<{{b}}|x|{{missing}}|{{b}}>");
    }

    #[test]
    fn no_asset_can_end_its_inline_element_early() {
        for (name, asset) in SCRIPTS.iter().enumerate() {
            assert!(
                !asset.to_lowercase().contains("</script"),
                "script {name} contains </script"
            );
        }
        assert!(!STYLE.to_lowercase().contains("</style"));
    }

    #[test]
    fn the_template_holds_every_placeholder() {
        for name in ["title", "style", "script", "data"] {
            assert!(
                TEMPLATE.contains(&format!("{{{{{name}}}}}")),
                "{{{{{name}}}}} missing"
            );
        }
    }
}

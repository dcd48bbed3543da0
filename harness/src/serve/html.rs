//! The little HTML that `faultline serve` writes: escaping, links, and the page around it.

/// Text made safe to put inside an HTML element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The URL of a file of the store: `/files/` and each segment percent-encoded (so a name
/// with `/`, `?` or `#` stays one segment).
pub fn file_url<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    let mut url = String::from("/files");
    for segment in segments {
        url.push('/');
        for byte in segment.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~+".contains(&byte) {
                url.push(char::from(byte));
            } else {
                url.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    url
}

/// A whole page: `title` escaped, `body` already HTML.
pub fn page(title: &str, body: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; }}
th, td {{ text-align: left; padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; }}
th {{ background: #f4f4f4; }}
td.number {{ text-align: right; font-variant-numeric: tabular-nums; }}
.valid {{ color: #17702b; }}
.invalid {{ color: #b3141b; font-weight: bold; }}
.unknown {{ color: #9a6700; }}
.none {{ color: #777; font-style: italic; }}
a {{ color: #0b5cad; }}
</style>
</head>
<body>
{body}
</body>
</html>
"#,
        title = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_names_is_shown_not_run() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert!(page("<b>", "<p>ok</p>").contains("<title>&lt;b&gt;</title>"));
    }

    #[test]
    fn each_segment_of_a_file_url_stays_one_segment() {
        assert_eq!(
            file_url(["register-kill+pause", "20260101T000000", "report.html"]),
            "/files/register-kill+pause/20260101T000000/report.html"
        );
        assert_eq!(file_url(["a b", "c/d?#"]), "/files/a%20b/c%2Fd%3F%23");
        assert_eq!(file_url([]), "/files");
    }
}

//! Numbers and sizes as people read them, and text made safe for each output format: one
//! escaping function per format, used by every writer of it (CSV is the csv crate's, SVG text
//! plotters').

/// 13002 → "13,002".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte count: `512 bytes`, `1.5 KiB`, `1 MiB`, `1 GiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (unit, name) in UNITS {
        if bytes >= unit {
            let value = bytes as f64 / unit as f64;
            return if value.fract() == 0.0 {
                format!("{value:.0} {name}")
            } else {
                format!("{value:.1} {name}")
            };
        }
    }
    format!("{bytes} bytes")
}

/// A cell of a Markdown table: `|` cannot end the cell, a newline or other control character
/// cannot end the row (it is shown as its escape, `\n`), and HTML cannot open a tag.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '`' => out.push_str("\\`"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Text inside an HTML element or a quoted attribute.
pub fn html_text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JSON that cannot close the `<script>` element it sits in.
pub fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
}

/// A number as a person reads it: plainly from 0.00001 to 10^16, in exponent form beyond
/// (`1.5e-320`, not three hundred zeros), always the shortest text that reads back exactly.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() || (1e-5..1e16).contains(&x.abs()) {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// serde's message about a value of the wrong type, in the words of a config file: `expected
/// i64` becomes `expected a whole number`, `expected f64` `expected a number`.
pub fn plain_types(message: &str) -> String {
    let mut plain = message.to_string();
    for (rust, words) in [
        ("expected i64", "expected a whole number"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
    ] {
        plain = plain.replace(rust, words);
    }
    plain
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_far_from_one_use_an_exponent_and_read_back_exactly() {
        for x in [
            0.0,
            0.1,
            3.0,
            1e-4,
            123456.5,
            1e-320,
            1.5e-7,
            1e20,
            -8.2e307,
            f64::MAX,
        ] {
            let text = super::number(x);
            assert!(text.len() <= 24, "{text}");
            assert_eq!(text.parse::<f64>().unwrap(), x, "{text}");
        }
        assert_eq!(super::number(1e-320), "1e-320");
        assert_eq!(super::number(0.25), "0.25");
    }

    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(7), "7");
        assert_eq!(thousands(13_002), "13,002");
        assert_eq!(thousands(636_010), "636,010");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

    #[test]
    fn a_markdown_cell_cannot_forge_a_cell_a_row_or_a_tag() {
        assert_eq!(markdown_cell("relu_16x16"), "relu_16x16");
        assert_eq!(
            markdown_cell("relu | 1 | validation"),
            "relu \\| 1 \\| validation"
        );
        assert_eq!(markdown_cell("a\nb\r"), "a\\nb\\r");
        assert_eq!(markdown_cell("<b>\\"), "&lt;b&gt;\\\\");
        for hostile in ["x|y", "x\n| a | b |", "x\u{2028}y"] {
            let cell = markdown_cell(hostile);
            assert!(!cell.contains('\n'), "{cell}");
            assert_eq!(
                cell.matches('|').count(),
                cell.matches("\\|").count(),
                "{cell}"
            );
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1 << 20), "1 MiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(1536), "1.5 KiB");
    }
}

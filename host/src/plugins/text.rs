//! Plugin-supplied text made safe for the host's logs and error messages.
//!
//! A plugin chooses its log messages, field keys and values, panic text and error messages.
//! Written as they are, a `\n2026-01-01 INFO forged` would start a line of its own in a text log
//! (and a terminal escape could rewrite what an operator sees). So every such string passes
//! through [`escape`] once, where it enters the host: control characters (CR, LF, tab, ESC, …)
//! and the Unicode line, paragraph and bidirectional-override characters become visible escapes
//! (`\n`, `\r`, `\t`, `\u{1b}`), and the result is capped, on a character boundary, with `…`.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with control characters escaped, at most `max` bytes of the original kept.
pub fn escape(s: &str, max: usize) -> Cow<'_, str> {
    let cut = floor_char_boundary(s, max);
    let kept = &s[..cut];
    if cut == s.len() && !kept.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(kept.len() + 8);
    for c in kept.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    if cut < s.len() {
        out.push('…');
    }
    Cow::Owned(out)
}

/// Line breaks, control characters and the invisible characters that reorder or hide text.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_and_controls_become_visible() {
        assert_eq!(escape("ok\n2026-01-01 INFO forged", 100), "ok\\n2026-01-01 INFO forged");
        assert_eq!(escape("a\r\nb\tc", 100), "a\\r\\nb\\tc");
        assert_eq!(escape("\u{1b}[31mred\u{7}", 100), "\\u{1b}[31mred\\u{7}");
        assert_eq!(escape("x\u{2028}y\u{202e}z\u{85}", 100), "x\\u{2028}y\\u{202e}z\\u{85}");
        assert!(!escape("any\u{0}thing\u{7f}", 100).contains(|c: char| c.is_control()));
    }

    #[test]
    fn plain_text_is_borrowed_and_long_text_capped() {
        assert!(matches!(escape("payment declined: insufficient funds", 100), Cow::Borrowed(_)));
        assert_eq!(escape("abcdef", 3), "abc…");
        assert_eq!(escape("ééé", 3), "é…");
        assert_eq!(escape(&"\n".repeat(10), 4), "\\n\\n\\n\\n…");
    }
}

//! Messages on stderr that can never stop the work: a closed pipe, a full disk or a terminal
//! gone away only lose the message.

use std::io::Write;

/// Writes `text` and a newline to stderr, ignoring failure. Control characters left in `text`
/// are escaped, so a message is always exactly one line.
pub fn line(text: &str) {
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            shown.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            shown.push(c);
        }
    }
    shown.push('\n');
    let _ = std::io::stderr().lock().write_all(shown.as_bytes());
}

/// `gradcam: error: <msg>` on stderr (see [`line`]).
pub fn error(msg: impl std::fmt::Display) {
    line(&format!("gradcam: error: {msg}"));
}

//! Structured logs on standard error: one line per event, `key=value` text or a JSON
//! object (`Format::Json`), with the time, the level and the event's fields.

use std::io::Write as _;
use std::sync::OnceLock;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `time level message key=value …`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

/// Sets the format for the process (the first call wins).
pub fn init(format: Format) {
    let _ = FORMAT.set(format);
}

/// Writes one event.
pub fn event(level: &str, message: &str, fields: &[(&str, &str)]) {
    let now = stdx::time::format_rfc3339(stdx::time::now_unix());
    let line = match FORMAT.get().copied().unwrap_or_default() {
        Format::Json => {
            let mut m = serde_json::Map::new();
            m.insert("time".into(), now.into());
            m.insert("level".into(), level.into());
            m.insert("message".into(), message.into());
            for (k, v) in fields {
                m.insert((*k).into(), (*v).into());
            }
            serde_json::Value::Object(m).to_string()
        }
        Format::Text => {
            let mut s = format!("{now} {level:<5} {message}");
            for (k, v) in fields {
                if v.contains(char::is_whitespace) || v.contains('"') || v.is_empty() {
                    s.push_str(&format!(" {k}={v:?}"));
                } else {
                    s.push_str(&format!(" {k}={v}"));
                }
            }
            s
        }
    };
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

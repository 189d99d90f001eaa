//! Errors as runc's callers read them: one line on stderr, and with
//! `--log` one more in that file — a JSON object with `level`, `msg` and
//! `time` under `--log-format=json` (conmon and the shim parse `msg`).

use std::io::Write;
use std::path::Path;

pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
}

impl Logger {
    pub fn new(path: Option<&Path>, format: Option<&str>) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .ok()
        });
        Logger {
            file,
            json: format == Some("json"),
        }
    }

    pub fn error(&self, msg: &str) {
        eprintln!("nspawn-oci: {msg}");
        if let Some(mut f) = self.file.as_ref() {
            let line = if self.json {
                serde_json::json!({
                    "level": "error",
                    "msg": msg,
                    "time": crate::time::rfc3339(std::time::SystemTime::now()),
                })
                .to_string()
            } else {
                format!("level=error msg={msg:?}")
            };
            let _ = writeln!(f, "{line}");
        }
    }
}

//! An optional per-device transcript of a session, with secrets masked.

use std::io::Write as _;
use std::path::Path;

use secrecy::ExposeSecret;

pub struct Transcript {
    file: std::fs::File,
    secrets: Vec<secrecy::SecretString>,
}

const MASK: &str = "********";

impl Transcript {
    pub fn create(path: &Path, secrets: Vec<secrecy::SecretString>) -> std::io::Result<Transcript> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(Transcript { file, secrets })
    }

    fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            let s = s.expose_secret();
            if !s.is_empty() {
                out = out.replace(s, MASK);
            }
        }
        out
    }

    pub fn sent(&mut self, text: &str, secret: bool) {
        let shown = if secret {
            format!("{MASK}\n")
        } else {
            self.mask(text)
        };
        let _ = write!(self.file, ">>> {}", shown.replace('\r', "\n"));
    }

    pub fn received(&mut self, text: &str) {
        let masked = self.mask(text);
        let _ = self.file.write_all(masked.as_bytes());
    }
}

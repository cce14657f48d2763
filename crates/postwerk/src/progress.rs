//! Progress bars on standard error (standard output stays for results that scripts
//! read): `\r<label> [#####     ] done/total`, redrawn in place.

use std::io::{Read, Write};

/// Width of the bar in characters.
const WIDTH: u64 = 30;

/// The bar for `done` of `total`: `[#####     ]` (full when `total` is 0).
pub fn bar(done: u64, total: u64) -> String {
    let filled = (done.min(total) * WIDTH)
        .checked_div(total)
        .unwrap_or(WIDTH);
    format!(
        "[{}{}]",
        "#".repeat(filled as usize),
        " ".repeat((WIDTH - filled) as usize)
    )
}

/// A byte counter drawn as a bar in MB, redrawn when a percent more is done.
pub struct Bytes {
    label: &'static str,
    total: u64,
    done: u64,
    drawn: Option<u64>,
}

impl Bytes {
    /// A bar for `total` bytes.
    pub fn new(label: &'static str, total: u64) -> Self {
        Bytes {
            label,
            total,
            done: 0,
            drawn: None,
        }
    }

    /// Counts `n` more bytes done.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        let percent = (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100);
        if self.drawn != Some(percent) {
            self.drawn = Some(percent);
            let mb = |b: u64| b as f64 / 1e6;
            let _ = write!(
                std::io::stderr(),
                "\r{} {} {:.1}/{:.1} MB",
                self.label,
                bar(self.done, self.total),
                mb(self.done),
                mb(self.total)
            );
        }
    }

    /// Ends the line.
    pub fn finish(self) {
        if self.drawn.is_some() {
            eprintln!();
        }
    }
}

/// A reader that counts what passes through it on a [`Bytes`] bar.
pub struct Counting<'a, R> {
    /// The reader.
    pub inner: R,
    /// The bar.
    pub progress: &'a mut Bytes,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars() {
        assert_eq!(bar(0, 10), format!("[{}]", " ".repeat(30)));
        assert_eq!(
            bar(5, 10),
            format!("[{}{}]", "#".repeat(15), " ".repeat(15))
        );
        assert_eq!(bar(0, 0), format!("[{}]", "#".repeat(30)));
        assert_eq!(bar(20, 10), bar(10, 10));
    }
}

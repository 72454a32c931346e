//! Progress display: indicatif bars (one for the current file, one overall) when stderr is a
//! terminal, plain lines every two seconds otherwise, nothing with `--quiet`.
//!
//! Invariant: progress only ever writes to stderr, so stdout stays clean for `--json`.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// How often plain progress lines are printed.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

enum Display {
    Quiet,
    Bars {
        _multi: MultiProgress,
        file: ProgressBar,
        overall: ProgressBar,
    },
    Plain {
        last: Instant,
    },
}

/// Progress of one transfer (sending or receiving), by bytes.
pub(crate) struct Progress {
    display: Display,
    label: String,
    total: u64,
    done: u64,
    started: Instant,
}

impl Progress {
    /// A progress display for `total` bytes (0 when not yet known), labelled `label`.
    pub(crate) fn new(label: &str, total: u64, quiet: bool) -> Progress {
        let started = crate::now();
        let display = if quiet {
            Display::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix:>8} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            let file = multi.add(ProgressBar::new(0).with_style(style.clone()));
            file.set_prefix("file");
            let overall = multi.add(ProgressBar::new(total).with_style(style));
            overall.set_prefix("total");
            Display::Bars {
                _multi: multi,
                file,
                overall,
            }
        } else {
            Display::Plain { last: started }
        };
        Progress {
            display,
            label: label.to_owned(),
            total,
            done: 0,
            started,
        }
    }

    /// A new file of `size` bytes begins.
    pub(crate) fn start_file(&mut self, path: &str, size: u64) {
        if let Display::Bars { file, .. } = &self.display {
            file.reset();
            file.set_length(size);
            file.set_message(path.to_owned());
        }
    }

    /// `bytes` more were moved.
    pub(crate) fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        match &mut self.display {
            Display::Quiet => {}
            Display::Bars { file, overall, .. } => {
                file.inc(bytes);
                overall.inc(bytes);
            }
            Display::Plain { last } => {
                let now = crate::now();
                if now.duration_since(*last) >= PLAIN_EVERY {
                    *last = now;
                    let secs = now.duration_since(self.started).as_secs_f64().max(1e-9);
                    let rate = self.done as f64 / secs;
                    let eta = if rate > 0.0 && self.total > self.done {
                        format!("{:.0}s", (self.total - self.done) as f64 / rate)
                    } else {
                        "-".to_owned()
                    };
                    eprintln!(
                        "{}: {:.1}/{:.1} MB, {:.1} MB/s, ETA {eta}",
                        self.label,
                        self.done as f64 / 1e6,
                        self.total as f64 / 1e6,
                        rate / 1e6
                    );
                }
            }
        }
    }

    /// Prints a line without tearing the bars.
    pub(crate) fn println(&self, line: &str) {
        match &self.display {
            Display::Bars { overall, .. } => overall.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// Removes the bars.
    pub(crate) fn finish(&self) {
        if let Display::Bars { file, overall, .. } = &self.display {
            file.finish_and_clear();
            overall.finish_and_clear();
        }
    }
}

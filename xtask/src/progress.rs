//! Progress of the long steps (indicatif): `[k/N]`, what is under way, the time elapsed
//! and an estimate of what is left — a training's optimizer steps, a model's parity and
//! measure checks, the bench's measurements — and a spinner with the elapsed time where
//! there is no count (an install). On a terminal it is a live bar under the log; in a log
//! file (CI), where a bar cannot redraw, each advance is a line of its own with the same
//! figures.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{HumanDuration, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A count of work done out of a known total.
pub struct Progress {
    bar: ProgressBar,
    /// Whether a terminal shows the bar; otherwise each advance is printed.
    live: bool,
}

fn draw_target() -> (ProgressDrawTarget, bool) {
    if std::io::stderr().is_terminal() {
        (ProgressDrawTarget::stderr(), true)
    } else {
        (ProgressDrawTarget::hidden(), false)
    }
}

impl Progress {
    /// A bar of `total` units of `what` (`optimizer steps`, `checks`).
    pub fn new(total: u64, what: &str) -> Self {
        let (target, live) = draw_target();
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let template =
            format!("    [{{pos}}/{{len}} {what}] {{wide_bar}} {{elapsed}} elapsed, ~{{eta}} left · {{msg}}");
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(500));
        Self { bar, live }
    }

    /// A spinner for work of unknown length.
    pub fn spinner(message: &str) -> Self {
        let (target, live) = draw_target();
        let bar = ProgressBar::with_draw_target(None, target);
        if let Ok(style) = ProgressStyle::with_template("    {spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        if !live {
            eprintln!("    {message}");
        }
        Self { bar, live }
    }

    /// A line of log above the bar.
    pub fn println(&self, line: &str) {
        if self.live {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    /// Moves to `position` of `total` (a total may grow, as a training's does not know its
    /// own until it starts), saying what is under way.
    pub fn set(&self, position: u64, total: u64, message: &str) {
        self.bar.set_length(total);
        self.bar.set_position(position);
        self.bar.set_message(message.to_string());
        if !self.live {
            eprintln!("    {}", self.line());
        }
    }

    /// One more unit done, saying which.
    pub fn advance(&self, message: &str) {
        self.bar.inc(1);
        self.bar.set_message(message.to_string());
        if !self.live {
            eprintln!("    {}", self.line());
        }
    }

    /// `[k/N] message · elapsed, ~left`, as a log line.
    fn line(&self) -> String {
        let position = self.bar.position();
        let total = self.bar.length().unwrap_or(position);
        let elapsed = self.bar.elapsed();
        let left = if position > 0 && total > position {
            format!(
                ", ~{} left",
                HumanDuration(elapsed.mul_f64((total - position) as f64 / position as f64))
            )
        } else {
            String::new()
        };
        format!(
            "[{position}/{total}] {} · {} elapsed{left}",
            self.bar.message(),
            HumanDuration(elapsed)
        )
    }

    /// Done: the bar is cleared (the log lines stay).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// `step s/S` in a training's progress line (`epoch 1/2 step 30/98 loss …`): (s, S).
pub fn optimizer_step(line: &str) -> Option<(u64, u64)> {
    let after = line.split_once("step ")?.1;
    let fraction = after.split_whitespace().next()?;
    let (done, total) = fraction.split_once('/')?;
    Some((done.parse().ok()?, total.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trainings_step_is_read_from_its_progress_line() {
        assert_eq!(optimizer_step("epoch 1/2 step 30/98 loss 0.4123 (12s)"), Some((30, 98)));
        assert_eq!(
            optimizer_step("distill: epoch 3/3 step 294/294 loss 0.1 (80s)"),
            Some((294, 294))
        );
        assert_eq!(optimizer_step("exporting with optimum"), None);
        assert_eq!(optimizer_step("step x/y"), None);
    }

    #[test]
    fn a_log_line_says_k_of_n_elapsed_and_what_is_left() {
        let progress = Progress::new(4, "checks");
        progress.bar.set_position(1);
        progress.bar.set_message("parity news-topic O1");
        let line = progress.line();
        assert!(line.starts_with("[1/4] parity news-topic O1 · "), "{line}");
        assert!(line.contains(" elapsed"), "{line}");
        progress.bar.set_position(4);
        assert!(!progress.line().contains("left"), "nothing is left at the end");
    }
}

//! `reprove audit`'s progress on a terminal: one line per binary being
//! rebuilt, naming its step, and a line when each ends; nothing in `--json`
//! mode or when stderr is not a terminal.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use ::audit::run::AuditProgress;
use rebuild::Step;
use report::v1;

/// Bars for the jobs of an audit, by job index.
pub(crate) struct Bars {
    multi: indicatif::MultiProgress,
    names: Vec<String>,
    bars: Mutex<Vec<Option<indicatif::ProgressBar>>>,
}

impl Bars {
    /// Bars for jobs named `names` (the binaries' paths), or `None` when
    /// nothing should be shown.
    pub(crate) fn new(names: Vec<String>, quiet: bool) -> Option<Bars> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let bars = Mutex::new(vec![None; names.len()]);
        Some(Bars { multi: indicatif::MultiProgress::new(), names, bars })
    }

    fn with_bar(&self, index: usize, f: impl FnOnce(&indicatif::ProgressBar)) {
        let Ok(mut bars) = self.bars.lock() else { return };
        let Some(slot) = bars.get_mut(index) else { return };
        let bar = slot.get_or_insert_with(|| {
            let pb = self.multi.add(indicatif::ProgressBar::new_spinner());
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}") {
                pb.set_style(style);
            }
            pb.set_prefix(self.names.get(index).cloned().unwrap_or_default());
            pb.enable_steady_tick(Duration::from_millis(120));
            pb
        });
        f(bar);
    }

    /// Removes every bar.
    pub(crate) fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl AuditProgress for Bars {
    fn started(&self, index: usize) {
        self.with_bar(index, |pb| pb.set_message("starting…"));
    }

    fn step(&self, index: usize, step: Step) {
        self.with_bar(index, |pb| pb.set_message(format!("{step}…")));
    }

    fn finished(&self, index: usize, report: &v1::Report, shared: bool) {
        let name = self.names.get(index).cloned().unwrap_or_default();
        let how = if shared { " (same build as another binary)" } else { "" };
        let _ = self.multi.println(format!("  {:<15} {name}{how}", report.verdict.as_str()));
        if let Ok(mut bars) = self.bars.lock() {
            if let Some(pb) = bars.get_mut(index).and_then(Option::take) {
                pb.finish_and_clear();
                self.multi.remove(&pb);
            }
        }
    }
}

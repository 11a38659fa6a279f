//! A study of seeds (`el.study()` without a grid; `crate::study`): the page's
//! current settings, `replicas` initial weights and batch orders per side, the
//! same data draw, trained on the CPU a bounded piece at a time. It lives in
//! the study module (`www/pkg-study`, loaded when the first study starts)
//! with the grid study, not in the module every reader downloads. Plain Rust:
//! `study_page.rs` exports it to the worker; tests call it directly. The GPU
//! module's `study` trains the same study from the same settings query.

use crate::job::{Job, Slicer};
use crate::settings::parse_query;
use crate::study::{Study, StudyJob, StudyReport};

/// A study of seeds under way in the page.
pub struct SeedStudy {
    study: Study,
    job: StudyJob,
    slicer: Slicer,
    /// Clock reading at the start, and the milliseconds to the end once done
    /// (it shares the worker with the page's runs, so this is longer than its
    /// compute time).
    started_ms: f64,
    took_ms: Option<f64>,
}

impl SeedStudy {
    /// The study of `settings_query`'s settings (the sandbox's
    /// `settingsQuery`), started at clock reading `now_ms`. Errors name a bad
    /// setting or count (`crate::study::Study::from_settings`).
    pub fn new(settings_query: &str, replicas: usize, steps: usize, now_ms: f64) -> Result<SeedStudy, String> {
        let settings = parse_query(settings_query);
        let study = Study::from_settings(settings.iter().map(|(k, v)| (k.as_str(), v.as_str())), replicas, steps)
            .map_err(|e| e.to_string())?;
        let job = StudyJob::new(&study);
        Ok(SeedStudy { study, job, slicer: Slicer::default(), started_ms: now_ms, took_ms: None })
    }

    /// Trains for about `budget_ms` of `now()`; returns the progress in [0, 1].
    pub fn advance(&mut self, budget_ms: f64, mut now: impl FnMut() -> f64) -> f64 {
        self.slicer.work_for(&mut self.job, &mut (), budget_ms, &mut now);
        if self.job.is_done() && self.took_ms.is_none() {
            self.took_ms = Some(now() - self.started_ms);
        }
        self.job.progress()
    }

    /// The finished study's `StudyReport` as JSON, or None while it runs:
    /// `{backend, replicas, steps, ms, left, right, paired}`; each side has
    /// `label`, mean/min/max of `ood_acc`, `id_acc`, `train_loss` and
    /// `ood_loss`, `diverged`, and every replica's metrics.
    pub fn result_json(&self) -> Option<String> {
        let ms = self.took_ms?;
        let report = StudyReport::new(&self.study, self.job.results(), "cpu", ms);
        Some(serde_json::to_string(&report).expect("plain data serialises"))
    }
}

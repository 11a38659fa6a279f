//! `flatminima ensemble`: k members of each side (member i from seed `seed + i`,
//! member 0 the side itself), their mean predicted probability, and its
//! train / ID / OOD loss and accuracy beside the members' mean.

use std::path::PathBuf;

use clap::Args;
use flatminima_core::ensemble::{train_ensemble, EnsembleReport};

use super::{print_stdout, write_file, ConfigArgs, Failure};

#[derive(Args)]
pub struct EnsembleArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Members per side (1..=64).
    #[arg(long, default_value_t = 5)]
    pub members: usize,
    /// Also write both sides' reports (every member's metrics) as JSON.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn run(args: EnsembleArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let mut reports = Vec::new();
    for side in 0..2 {
        let (report, _) = train_ensemble(&config, side, args.members)
            .map_err(|e| Failure::bad_input(format!("{}: {}", e.field, e.message)))?;
        reports.push(report);
    }
    if let Some(path) = &args.out {
        let json = serde_json::json!({ "left": reports[0], "right": reports[1] });
        write_file(path, &(serde_json::to_string_pretty(&json).expect("reports serialise") + "\n"))?;
    }
    print_stdout(&table(&reports))
}

/// One block per side: the ensemble and the mean of its members, per set.
fn table(reports: &[EnsembleReport]) -> String {
    let mut out = String::new();
    for r in reports {
        let k = r.member_metrics.len() as f64;
        let mean =
            |f: fn(&flatminima_core::metrics::MetricPoint) -> f64| r.member_metrics.iter().map(f).sum::<f64>() / k;
        out += &format!("{} - {} members", r.label, r.members);
        if r.diverged > 0 {
            out += &format!(" ({} diverged)", r.diverged);
        }
        out += "\n                ensemble   members' mean\n";
        let percent = |x: f64| format!("{:.1}%", 100.0 * x);
        let rows = [
            ("train acc", percent(r.train_acc), percent(mean(|m| m.train_acc))),
            ("ID acc", percent(r.id_acc), percent(mean(|m| m.id_acc))),
            ("OOD acc", percent(r.ood_acc), percent(mean(|m| m.ood_acc))),
            ("OOD loss", format!("{:.4}", r.ood_loss), format!("{:.4}", mean(|m| m.ood_loss))),
        ];
        for (name, ensemble, members) in rows {
            out += &format!("  {name:<12} {ensemble:>9} {members:>15}\n");
        }
    }
    out + "(member i trains with seed + i; the ensemble predicts the mean of the members' probabilities)\n"
}

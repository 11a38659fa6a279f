//! `flatminima compare`: train both sides and print them side by side.

use clap::Args;
use flatminima::data::describe;
use flatminima::metrics::MetricPoint;
use flatminima::pair::Pair;
use flatminima::train::Run;

use super::{ConfigArgs, Failure};

#[derive(Args)]
pub struct CompareArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
}

pub fn run(args: CompareArgs) -> Result<(), Failure> {
    let config = args.config.load()?;
    let steps = config.training.steps;
    let mut pair = Pair::new(config).map_err(|e| Failure::bad_input(e.to_string()))?;
    pair.train(steps);
    print!("{}", table(&pair));
    Ok(())
}

/// The comparison table as text (rows: metrics; columns: the two sides).
fn table(pair: &Pair) -> String {
    let c = &pair.config;
    let mut out = format!(
        "dataset {} ({} train / {} test points, noise {}), shift: {}\nmodel 2-{}-{} {}, batch {}, {} steps, seed {}\n\n",
        c.data.dataset.name(),
        pair.splits.train.len(),
        pair.splits.id_test.len(),
        c.data.noise,
        describe(&c.shift),
        c.model.hidden.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("-"),
        c.classes(),
        c.model.activation.name(),
        c.training.batch_size,
        c.training.steps,
        c.seed,
    );
    let sides = pair.sides();
    let last = |run: &Run| *run.history.last().expect("first point is logged at creation");
    let (l, r) = (last(sides[0]), last(sides[1]));
    out += &format!("{:<16}{:>24}{:>24}\n", "", sides[0].side.label(), sides[1].side.label());
    let rows: [(&str, fn(&MetricPoint) -> f64); 8] = [
        ("train loss", |m| m.train_loss),
        ("train acc", |m| m.train_acc),
        ("ID loss", |m| m.id_loss),
        ("ID acc", |m| m.id_acc),
        ("OOD loss", |m| m.ood_loss),
        ("OOD acc", |m| m.ood_acc),
        ("OOD gap (acc)", |m| m.id_acc - m.ood_acc),
        ("grad norm", |m| m.grad_norm),
    ];
    for (name, f) in rows {
        out += &format!("{name:<16}{:>24.4}{:>24.4}\n", f(&l), f(&r));
    }
    out += &format!("{:<16}{:>24}{:>24}\n", "step", sides[0].step, sides[1].step);
    let diverged = |run: &Run| run.diverged.as_ref().map_or("no".to_string(), |d| format!("at step {}", d.step));
    out += &format!("{:<16}{:>24}{:>24}\n", "diverged", diverged(sides[0]), diverged(sides[1]));
    for run in sides {
        if let Some(d) = &run.diverged {
            out += &format!("{}: {}\n", run.side.label(), d.reason);
        }
    }
    out
}

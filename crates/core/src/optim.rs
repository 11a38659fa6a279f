//! Optimisers with PyTorch `torch.optim` semantics, on the flat parameter vector.
//!
//! Each `step` follows the single-tensor ("foreach=False") code path of
//! torch.optim exactly, so any run can be replayed in PyTorch (float64) and
//! compared step by step. The learning rate is passed in per step, so that a
//! schedule (see [`crate::schedule`]) can drive it like an LR scheduler does.

use serde::{Deserialize, Serialize};

use crate::error::{check_range, ConfigError};

/// Which optimiser and its hyperparameters (PyTorch's names and defaults,
/// except that `lr` must always be given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent, optionally with momentum (torch.optim.SGD).
    Sgd {
        /// Learning rate: the base step size (a schedule may scale it per step).
        lr: f64,
        /// Momentum factor in [0, 1); 0 means plain SGD.
        #[serde(default)]
        momentum: f64,
        /// Dampening for momentum: the new gradient is scaled by 1 - dampening (default 0).
        #[serde(default)]
        dampening: f64,
        /// L2 penalty added to the gradient (default 0: none).
        #[serde(default)]
        weight_decay: f64,
        /// Use Nesterov momentum (needs momentum > 0 and dampening 0).
        #[serde(default)]
        nesterov: bool,
    },
    /// Adam (torch.optim.Adam): per-parameter steps from running gradient moments.
    Adam {
        /// Learning rate: the base step size (a schedule may scale it per step).
        lr: f64,
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        #[serde(default = "default_betas")]
        betas: (f64, f64),
        /// Added to the denominator for numerical stability (default 1e-8).
        #[serde(default = "default_eps")]
        eps: f64,
        /// L2 penalty added to the gradient (default 0: none).
        #[serde(default)]
        weight_decay: f64,
    },
    /// Adam with decoupled weight decay (torch.optim.AdamW).
    #[serde(rename = "adamw")]
    AdamW {
        /// Learning rate: the base step size (a schedule may scale it per step).
        lr: f64,
        /// Decay rates of the first and second moment averages (default (0.9, 0.999)).
        #[serde(default = "default_betas")]
        betas: (f64, f64),
        /// Added to the denominator for numerical stability (default 1e-8).
        #[serde(default = "default_eps")]
        eps: f64,
        /// Decoupled weight decay, applied to the weights directly (default 0.01).
        #[serde(default = "default_adamw_weight_decay")]
        weight_decay: f64,
    },
    /// RMSprop (torch.optim.RMSprop): steps scaled by a running average of squared gradients.
    Rmsprop {
        /// Learning rate: the base step size (a schedule may scale it per step).
        lr: f64,
        /// Smoothing constant of the squared-gradient average (default 0.99).
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Added to the denominator for numerical stability (default 1e-8).
        #[serde(default = "default_eps")]
        eps: f64,
        /// L2 penalty added to the gradient (default 0: none).
        #[serde(default)]
        weight_decay: f64,
        /// Momentum factor in [0, 1); 0 means none.
        #[serde(default)]
        momentum: f64,
        /// Divide by the estimated gradient variance instead of the raw second moment.
        #[serde(default)]
        centered: bool,
    },
}

fn default_betas() -> (f64, f64) {
    (0.9, 0.999)
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_weight_decay() -> f64 {
    0.01
}
fn default_alpha() -> f64 {
    0.99
}

impl OptimizerConfig {
    /// SGD with momentum 0.9: the base optimiser of both sides of the default pair (the right one wraps it in SAM).
    pub fn sgd_momentum(lr: f64) -> Self {
        OptimizerConfig::Sgd { lr, momentum: 0.9, dampening: 0.0, weight_decay: 0.0, nesterov: false }
    }

    /// An optimiser of the named kind with PyTorch's defaults and the given lr
    /// (SGD gets momentum 0.9, the sandbox's default).
    pub fn with_kind(kind: &str, lr: f64) -> Result<Self, String> {
        Ok(match kind {
            "sgd" => Self::sgd_momentum(lr),
            "adam" => OptimizerConfig::Adam { lr, betas: default_betas(), eps: default_eps(), weight_decay: 0.0 },
            "adamw" => OptimizerConfig::AdamW {
                lr,
                betas: default_betas(),
                eps: default_eps(),
                weight_decay: default_adamw_weight_decay(),
            },
            "rmsprop" => OptimizerConfig::Rmsprop {
                lr,
                alpha: default_alpha(),
                eps: default_eps(),
                weight_decay: 0.0,
                momentum: 0.0,
                centered: false,
            },
            other => return Err(format!("unknown optimizer `{other}` (expected one of sgd, adam, adamw, rmsprop)")),
        })
    }

    /// The config tag: `"sgd"`, `"adam"`, `"adamw"` or `"rmsprop"`.
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adam { .. } => "adam",
            OptimizerConfig::AdamW { .. } => "adamw",
            OptimizerConfig::Rmsprop { .. } => "rmsprop",
        }
    }

    /// The name as printed in legends: SGD, Adam, AdamW, RMSprop.
    pub fn display_name(&self) -> &'static str {
        match self {
            OptimizerConfig::Sgd { .. } => "SGD",
            OptimizerConfig::Adam { .. } => "Adam",
            OptimizerConfig::AdamW { .. } => "AdamW",
            OptimizerConfig::Rmsprop { .. } => "RMSprop",
        }
    }

    /// The base learning rate, whichever the optimiser.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. } => lr,
        }
    }

    /// Replaces the base learning rate, keeping every other setting.
    pub fn set_lr(&mut self, new_lr: f64) {
        match self {
            OptimizerConfig::Sgd { lr, .. }
            | OptimizerConfig::Adam { lr, .. }
            | OptimizerConfig::AdamW { lr, .. }
            | OptimizerConfig::Rmsprop { lr, .. } => *lr = new_lr,
        }
    }

    /// Ranges are generous (an lr of 50 is allowed: watching a run diverge is a
    /// lesson) but exclude values that make no sense at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("lr", self.lr(), 0.0, 100.0)?;
        if self.lr() == 0.0 {
            return Err(ConfigError::new("lr", "must be > 0 (got 0): nothing would ever change"));
        }
        match *self {
            OptimizerConfig::Sgd { momentum, dampening, weight_decay, nesterov, .. } => {
                check_range("momentum", momentum, 0.0, 0.999)?;
                check_range("dampening", dampening, 0.0, 1.0)?;
                check_range("weight_decay", weight_decay, 0.0, 1.0)?;
                if nesterov && (momentum == 0.0 || dampening != 0.0) {
                    return Err(ConfigError::new(
                        "nesterov",
                        "needs momentum > 0 and dampening = 0 (as in torch.optim.SGD)",
                    ));
                }
            }
            OptimizerConfig::Adam { betas, eps, weight_decay, .. }
            | OptimizerConfig::AdamW { betas, eps, weight_decay, .. } => {
                check_range("betas[0]", betas.0, 0.0, 0.9999)?;
                check_range("betas[1]", betas.1, 0.0, 0.99999)?;
                check_range("eps", eps, 1e-12, 1.0)?;
                check_range("weight_decay", weight_decay, 0.0, 1.0)?;
            }
            OptimizerConfig::Rmsprop { alpha, eps, weight_decay, momentum, .. } => {
                check_range("alpha", alpha, 0.0, 0.99999)?;
                check_range("eps", eps, 1e-12, 1.0)?;
                check_range("weight_decay", weight_decay, 0.0, 1.0)?;
                check_range("momentum", momentum, 0.0, 0.999)?;
            }
        }
        Ok(())
    }
}

/// An optimiser's running state (momentum buffers, moment estimates).
#[derive(Clone, Debug)]
pub struct Optimizer {
    /// The optimiser kind and hyperparameters.
    pub config: OptimizerConfig,
    /// Number of steps taken (PyTorch's `state['step']`).
    pub steps: u64,
    /// SGD momentum buffer / Adam first moment / RMSprop momentum buffer.
    buf1: Vec<f64>,
    /// Adam second moment / RMSprop square average.
    buf2: Vec<f64>,
    /// RMSprop centred gradient average.
    buf3: Vec<f64>,
}

impl Optimizer {
    /// A fresh optimiser with zeroed state for `num_params` parameters.
    pub fn new(config: OptimizerConfig, num_params: usize) -> Self {
        let n = num_params;
        Optimizer { config, steps: 0, buf1: vec![0.0; n], buf2: vec![0.0; n], buf3: vec![0.0; n] }
    }

    /// Forget all state, as a fresh torch optimiser would have.
    pub fn reset(&mut self) {
        self.steps = 0;
        for b in [&mut self.buf1, &mut self.buf2, &mut self.buf3] {
            b.fill(0.0);
        }
    }

    /// One update of `params` with gradient `grad` at learning rate `lr`.
    /// `grad` is read only: weight decay is folded in on the fly.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64], lr: f64) {
        self.steps += 1;
        let first_step = self.steps == 1;
        match self.config {
            OptimizerConfig::Sgd { momentum, dampening, weight_decay, nesterov, .. } => {
                for ((w, &g), buf) in params.iter_mut().zip(grad).zip(self.buf1.iter_mut()) {
                    let mut d = g + weight_decay * *w;
                    if momentum != 0.0 {
                        // torch: buf = d on the first step, else momentum * buf + (1 - dampening) * d
                        *buf = if first_step { d } else { momentum * *buf + (1.0 - dampening) * d };
                        d = if nesterov { d + momentum * *buf } else { *buf };
                    }
                    *w -= lr * d;
                }
            }
            OptimizerConfig::Adam { betas, eps, weight_decay, .. } => {
                self.adam_step(params, grad, lr, betas, eps, weight_decay, 0.0);
            }
            OptimizerConfig::AdamW { betas, eps, weight_decay, .. } => {
                self.adam_step(params, grad, lr, betas, eps, 0.0, weight_decay);
            }
            OptimizerConfig::Rmsprop { alpha, eps, weight_decay, momentum, centered, .. } => {
                // Written plainly (index loop) to keep the torch order of operations visible.
                for i in 0..params.len() {
                    let g = grad[i] + weight_decay * params[i];
                    self.buf2[i] = alpha * self.buf2[i] + (1.0 - alpha) * g * g;
                    let avg = if centered {
                        self.buf3[i] += (1.0 - alpha) * (g - self.buf3[i]); // lerp
                        (self.buf2[i] - self.buf3[i] * self.buf3[i]).sqrt() + eps
                    } else {
                        self.buf2[i].sqrt() + eps
                    };
                    if momentum > 0.0 {
                        self.buf1[i] = momentum * self.buf1[i] + g / avg;
                        params[i] -= lr * self.buf1[i];
                    } else {
                        params[i] -= lr * g / avg;
                    }
                }
            }
        }
    }

    /// Adam's (and AdamW's) diagonal preconditioner after the steps taken, in
    /// Cohen et al. 2022's form: the step is lr P^-1 m with
    /// P = (1 - beta1^t) (sqrt(v / (1 - beta2^t)) + eps), as torch computes it.
    /// `None` for other optimisers or before the first step.
    pub fn preconditioner(&self) -> Option<Vec<f64>> {
        let (OptimizerConfig::Adam { betas: (beta1, beta2), eps, .. }
        | OptimizerConfig::AdamW { betas: (beta1, beta2), eps, .. }) = self.config
        else {
            return None;
        };
        if self.steps == 0 {
            return None;
        }
        let t = self.steps as f64;
        let bias_correction1 = 1.0 - libm::pow(beta1, t);
        let bias_correction2_sqrt = (1.0 - libm::pow(beta2, t)).sqrt();
        Some(self.buf2.iter().map(|v| bias_correction1 * (v.sqrt() / bias_correction2_sqrt + eps)).collect())
    }

    /// Adam (coupled L2 `weight_decay`) and AdamW (decoupled `decoupled_decay`).
    #[allow(clippy::too_many_arguments)]
    fn adam_step(
        &mut self,
        params: &mut [f64],
        grad: &[f64],
        lr: f64,
        (beta1, beta2): (f64, f64),
        eps: f64,
        weight_decay: f64,
        decoupled_decay: f64,
    ) {
        let t = self.steps as f64;
        let bias_correction1 = 1.0 - libm::pow(beta1, t);
        let bias_correction2_sqrt = (1.0 - libm::pow(beta2, t)).sqrt();
        let step_size = lr / bias_correction1;
        for ((w, &g), (m, v)) in params.iter_mut().zip(grad).zip(self.buf1.iter_mut().zip(self.buf2.iter_mut())) {
            *w *= 1.0 - lr * decoupled_decay;
            let g = g + weight_decay * *w;
            *m += (1.0 - beta1) * (g - *m); // exp_avg.lerp_(grad, 1 - beta1)
            *v = beta2 * *v + (1.0 - beta2) * g * g;
            let denom = v.sqrt() / bias_correction2_sqrt + eps;
            *w -= step_size * *m / denom;
        }
    }
}

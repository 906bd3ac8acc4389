//! Checking a spec: every count, share and size band in the range a run
//! accepts, each error naming the field at fault.

use std::fmt;

use super::{
    Lifecycle, MAX_IDLE_TRICKLE_RPS, MAX_OBJECT_SIZE, MAX_PROCESSES, MAX_THREADS, SizeBand,
    SpecError, WorkloadSpec,
};

fn range<T: PartialOrd + fmt::Display>(
    field: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), SpecError> {
    if value < min || value > max {
        return Err(SpecError::OutOfRange {
            field,
            value: value.to_string(),
            min: min.to_string(),
            max: max.to_string(),
        });
    }
    Ok(())
}

fn share(field: &'static str, value: f64) -> Result<(), SpecError> {
    if !value.is_finite() {
        return Err(SpecError::Invalid {
            field: field.into(),
            problem: format!("must be a number between 0 and 1, got {value}"),
        });
    }
    range(field, value, 0.0, 1.0)
}

fn band(field: &str, b: &SizeBand) -> Result<(), SpecError> {
    let bad = |problem: String| {
        Err(SpecError::Invalid {
            field: field.to_string(),
            problem,
        })
    };
    if b.min < 16 {
        return bad(format!("min must be at least 16 bytes, got {}", b.min));
    }
    if b.min > b.max {
        return bad(format!("min {} is larger than max {}", b.min, b.max));
    }
    if b.max > MAX_OBJECT_SIZE {
        return bad(format!(
            "max must be at most {MAX_OBJECT_SIZE} bytes, got {}",
            b.max
        ));
    }
    if !(b.weight.is_finite() && b.weight > 0.0) {
        return bad(format!(
            "weight must be a positive number, got {}",
            b.weight
        ));
    }
    Ok(())
}

impl WorkloadSpec {
    /// Checks every field; the first problem found is the error.
    pub fn validate(&self) -> Result<(), SpecError> {
        range("processes", self.processes, 0, MAX_PROCESSES)?;
        range("threads", self.threads, 1, MAX_THREADS)?;
        range("requests", self.requests, 1, 1 << 40)?;
        range("static_mib", self.static_mib, 0, 1 << 20)?;
        band("static_small", &self.static_small)?;
        band("static_large", &self.static_large)?;
        share("static_large_share", self.static_large_share)?;
        share("static_free_share", self.static_free_share)?;
        share("static_hot_share", self.static_hot_share)?;
        range(
            "static_writes_per_request",
            self.static_writes_per_request,
            0,
            1_000_000,
        )?;
        share("static_lazy_share", self.static_lazy_share)?;
        range(
            "lazy_uses_per_request",
            self.lazy_uses_per_request,
            0,
            1_000_000,
        )?;
        range(
            "objects_per_request",
            self.objects_per_request,
            1,
            1_000_000,
        )?;
        if self.sizes.is_empty() {
            return Err(SpecError::Invalid {
                field: "sizes".into(),
                problem: "needs at least one size band".into(),
            });
        }
        for (i, b) in self.sizes.iter().enumerate() {
            band(&format!("sizes[{i}]"), b)?;
        }
        // An infinite total would give every band but the last a zero share.
        if !self.sizes.iter().map(|b| b.weight).sum::<f64>().is_finite() {
            return Err(SpecError::Invalid {
                field: "sizes".into(),
                problem: "the weights add up to more than the largest number; \
                          use smaller weights (only their ratios matter)"
                    .into(),
            });
        }
        share("retain_share", self.retain_share)?;
        range("retain_max_size", self.retain_max_size, 0, MAX_OBJECT_SIZE)?;
        range("cache_objects", self.cache_objects, 0, 10_000_000)?;
        range("cache_bytes", self.cache_bytes, 0, 1 << 40)?;
        for (i, p) in self.mix_phases.iter().enumerate() {
            if !(p.share.is_finite() && p.share > 0.0) {
                return Err(SpecError::Invalid {
                    field: format!("mix_phases[{i}].share"),
                    problem: format!("must be a positive number, got {}", p.share),
                });
            }
            if p.sizes.is_empty() {
                return Err(SpecError::Invalid {
                    field: format!("mix_phases[{i}].sizes"),
                    problem: "needs at least one size band".into(),
                });
            }
            for (j, b) in p.sizes.iter().enumerate() {
                band(&format!("mix_phases[{i}].sizes[{j}]"), b)?;
            }
        }
        share("io_wait_share", self.io_wait_share)?;
        if self.io_wait_share > 0.95 {
            return Err(SpecError::OutOfRange {
                field: "io_wait_share",
                value: self.io_wait_share.to_string(),
                min: "0".into(),
                max: "0.95".into(),
            });
        }
        if !(self.idle_trickle_rps.is_finite()
            && (0.0..=MAX_IDLE_TRICKLE_RPS).contains(&self.idle_trickle_rps))
        {
            return Err(SpecError::OutOfRange {
                field: "idle_trickle_rps",
                value: self.idle_trickle_rps.to_string(),
                min: "0".into(),
                max: MAX_IDLE_TRICKLE_RPS.to_string(),
            });
        }
        self.validate_lifecycle()
    }

    /// A policy must have workers to replace and must replace one before
    /// the requests run out.
    fn validate_lifecycle(&self) -> Result<(), SpecError> {
        let bad = |problem: String| {
            Err(SpecError::Invalid {
                field: format!("lifecycle {}", self.lifecycle),
                problem,
            })
        };
        if !self.lifecycle.is_none() && self.processes == 0 {
            return bad("replaces workers, and this workload forks none (processes = 0)".into());
        }
        let first = match &self.lifecycle {
            Lifecycle::Requests { every, jitter } => Some(every - jitter),
            Lifecycle::Refork {
                after,
                max_unavailable,
            } => {
                if *max_unavailable > self.processes {
                    return bad(format!(
                        "replaces {max_unavailable} workers at once, and there are {}",
                        self.processes
                    ));
                }
                after.first().copied()
            }
            _ => None,
        };
        if let Some(n) = first
            && n >= self.requests
        {
            return bad(format!(
                "never acts: each worker serves {} requests, and it acts after {n}",
                self.requests
            ));
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let mut s = WorkloadSpec::server();
        s.threads = 0;
        assert!(s.validate().unwrap_err().to_string().starts_with("threads"));
        let mut s = WorkloadSpec::server();
        s.processes = 100_000;
        assert!(s.validate().unwrap_err().to_string().contains("processes"));
        let mut s = WorkloadSpec::server();
        s.sizes[1].min = 8;
        assert!(s.validate().unwrap_err().to_string().contains("sizes[1]"));
        let mut s = WorkloadSpec::server();
        s.retain_share = f64::NAN;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("retain_share")
        );
    }

    #[test]
    fn huge_weights_are_refused_or_used_as_ratios() {
        // Found by fuzzing: weights that sum to infinity passed validation
        // (the mix then drew only from the last band), and a single huge
        // weight made the mean object size infinite.
        let mut s = WorkloadSpec::server();
        s.sizes = vec![
            SizeBand::new(16, 16, f64::MAX),
            SizeBand::new(32, 32, f64::MAX),
        ];
        let e = s.validate().unwrap_err().to_string();
        assert!(e.starts_with("sizes:") && e.contains("weights"), "{e}");
        s.sizes = vec![SizeBand::new(16, 16, f64::MAX)];
        s.validate().unwrap();
        assert_eq!(s.mean_object_size(), 16.0);
    }
}

//! Shards and merged documents: which part of a command's cells a document
//! holds (`--shard K/N`), and, in a document `allocbench merge` wrote, the
//! machine shapes its cells were measured on.

use serde::{Deserialize, Serialize};

use super::environment::Environment;

/// Part `index` of `count` of a command's cells (`--shard K/N`, K from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why a `--shard` value is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// Not two whole numbers around a `/`.
    #[error("{0:?} is not K/N (shard K of N, K counting from 0: 0/4 … 3/4)")]
    NotKOfN(String),
    /// N out of 1 to 10,000.
    #[error("{0:?}: N must be 1 to 10000 shards")]
    Count(String),
    /// K not below N.
    #[error("{given:?}: shards count from 0, so K must be below N (0 to {last})")]
    Index {
        /// The value as given.
        given: String,
        /// The last shard, N − 1.
        last: u32,
    },
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    /// `K/N`: 1 ≤ N ≤ 10,000 and 0 ≤ K < N.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let bad = || ShardError::NotKOfN(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: u32 = k.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        if !(1..=10_000).contains(&n) {
            return Err(ShardError::Count(s.to_string()));
        }
        if k >= n {
            return Err(ShardError::Index {
                given: s.to_string(),
                last: n - 1,
            });
        }
        Ok(Shard { index: k, count: n })
    }
}

/// One machine shape of a merged document: machines alike in the facts
/// that make results comparable, whose cells are pooled as repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MachineShape {
    /// What the shape is, for people: CPUs, memory, kernel, glibc, THP.
    pub label: String,
    /// The environment of the first document of this shape (the others
    /// differ only in facts outside the shape: hostname, start time,
    /// memory available).
    pub environment: Environment,
    /// The documents pooled into this shape, in the order given.
    pub sources: Vec<MergedSource>,
}

/// A document a merged document was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct MergedSource {
    /// The file as given to `merge`.
    pub path: String,
    pub hostname: String,
    /// The shard it held; `null` for a whole run.
    pub shard: Option<Shard>,
    /// Cells it held.
    pub cells: usize,
    /// Added to its cells' repetition numbers so that they do not collide
    /// with another document's of the same shape (0 for the shards of one
    /// run, which never collide).
    pub repetition_offset: u32,
    /// Wall time of the run that wrote it, in seconds.
    pub wall_s: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_k_of_n_counting_from_zero() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { index: 2, count: 3 }));
        assert_eq!("0/1".parse::<Shard>().unwrap().to_string(), "0/1");
        for bad in ["3/3", "1", "a/3", "-1/3", "0/0", "1/2/3", "", "0/10001"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}

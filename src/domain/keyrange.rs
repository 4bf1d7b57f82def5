//! Vitess key ranges: parsing, the `x`-filled "safe name" used in object names and labels, the
//! Go operator's equal partitioning, and the coverage checks `validate` runs on custom shards.

use std::cmp::Ordering;
use std::fmt;

/// A half-open range of keyspace IDs, bounds as lower-case hex (empty = unbounded).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct KeyRange {
    pub start: String,
    pub end: String,
}

/// Why a key range is not acceptable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("bound {0:?} is not lower-case hexadecimal with an even number of digits")]
    BadBound(String),
    #[error("start {start:?} is not below end {end:?}")]
    Empty { start: String, end: String },
    #[error("key range {0:?} must be written start-end (e.g. -80, 80-, 40-80)")]
    BadForm(String),
}

impl KeyRange {
    /// The whole keyspace (`-`), i.e. an unsharded keyspace.
    pub fn full() -> Self {
        Self::default()
    }

    /// Builds and checks a range from its two bounds.
    pub fn new(start: &str, end: &str) -> Result<Self, Error> {
        for bound in [start, end] {
            let hex_ok = bound.len() % 2 == 0
                && bound
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !hex_ok {
                return Err(Error::BadBound(bound.to_string()));
            }
        }
        let range = Self {
            start: start.to_string(),
            end: end.to_string(),
        };
        if !range.end.is_empty() && compare_bounds(&range.start, &range.end) != Ordering::Less {
            return Err(Error::Empty {
                start: range.start,
                end: range.end,
            });
        }
        Ok(range)
    }

    /// Parses Vitess form `start-end` (`-`, `-80`, `80-`, `40-80`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text.split_once('-') {
            Some((start, end)) if !end.contains('-') => Self::new(start, end),
            _ => Err(Error::BadForm(text.to_string())),
        }
    }

    /// The form used in names and labels: unbounded ends are written `x` (`x-x`, `x-80`).
    pub fn safe_name(&self) -> String {
        let start = if self.start.is_empty() {
            "x"
        } else {
            &self.start
        };
        let end = if self.end.is_empty() { "x" } else { &self.end };
        format!("{start}-{end}")
    }

    /// Whether two ranges share at least one keyspace ID.
    pub fn overlaps(&self, other: &Self) -> bool {
        below_end(&other.start, &self.end) && below_end(&self.start, &other.end)
    }
}

impl fmt::Display for KeyRange {
    /// Vitess form: `start-end`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

/// Compares two hex bounds as keyspace-ID prefixes: `80` == `8000`, and `""` is the minimum.
pub fn compare_bounds(a: &str, b: &str) -> Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{s:0<width$}");
    pad(a).cmp(&pad(b))
}

/// Whether a start bound lies below an end bound (an empty end is +infinity).
fn below_end(start: &str, end: &str) -> bool {
    end.is_empty() || compare_bounds(start, end) == Ordering::Less
}

/// Splits the keyspace into `parts` ranges exactly as the Go operator does: cut points at
/// multiples of 2^64/parts, written with as many bytes as it takes to tell `parts` values apart.
/// Changing this would rename (and so delete) shards.
pub fn equal_partitioning(parts: u32) -> Vec<KeyRange> {
    if parts <= 1 {
        return vec![KeyRange::full()];
    }
    let parts = u64::from(parts);
    let mut num_bytes = 0usize;
    let mut q = parts - 1;
    while q != 0 {
        num_bytes += 1;
        q >>= 8;
    }
    // 2^64 / parts without overflow (parts > 1).
    let interval = (u64::MAX - parts + 1) / parts + 1;
    let mut ranges = Vec::with_capacity(parts as usize);
    let mut start = String::new();
    for i in 0..parts {
        let end = if i + 1 < parts {
            let cut = (i + 1).wrapping_mul(interval).to_be_bytes();
            cut[..num_bytes]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        } else {
            String::new()
        };
        ranges.push(KeyRange {
            start: std::mem::replace(&mut start, end.clone()),
            end,
        });
    }
    ranges
}

/// The key ranges of an `equal` partitioning as the spec gives it: `parts` (clamped to 1..)
/// and an optional `hexWidth` that pads each bound with zeros to that many hex digits.
pub fn equal_ranges(parts: i32, hex_width: Option<i32>) -> Vec<KeyRange> {
    let mut ranges = equal_partitioning(parts.max(1).unsigned_abs());
    let width = hex_width.unwrap_or(0).max(0) as usize;
    for range in &mut ranges {
        for bound in [&mut range.start, &mut range.end] {
            if !bound.is_empty() && bound.len() < width {
                // Not a format width: those stop at 65535.
                let pad = width - bound.len();
                bound.extend(std::iter::repeat_n('0', pad));
            }
        }
    }
    ranges
}

/// A problem with how a set of ranges covers the keyspace, by index into the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Ranges `a` and `b` share keyspace IDs.
    Overlap { a: usize, b: usize },
    /// No range covers the IDs from `from` up to `to` (empty = the ends of the keyspace).
    Gap { from: String, to: String },
}

/// Checks that the ranges cover the whole keyspace exactly once; returns every overlap and gap.
pub fn check_coverage(ranges: &[KeyRange]) -> Vec<Coverage> {
    let mut problems = Vec::new();
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by(|&a, &b| compare_bounds(&ranges[a].start, &ranges[b].start));
    for (pos, &a) in order.iter().enumerate() {
        for &b in &order[pos + 1..] {
            if ranges[a].overlaps(&ranges[b]) {
                problems.push(Coverage::Overlap {
                    a: a.min(b),
                    b: a.max(b),
                });
            }
        }
    }
    // Walk from the bottom of the keyspace, extending the covered prefix.
    let mut covered = String::new();
    let mut reached_top = false;
    for &i in &order {
        let range = &ranges[i];
        if compare_bounds(&range.start, &covered) == Ordering::Greater {
            problems.push(Coverage::Gap {
                from: covered.clone(),
                to: range.start.clone(),
            });
        }
        if range.end.is_empty() {
            reached_top = true;
            break;
        }
        if compare_bounds(&range.end, &covered) == Ordering::Greater {
            covered = range.end.clone();
        }
    }
    if !reached_top && !ranges.is_empty() {
        problems.push(Coverage::Gap {
            from: covered,
            to: String::new(),
        });
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parts: u32) -> Vec<String> {
        equal_partitioning(parts)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn equal_small() {
        assert_eq!(names(1), ["-"]);
        assert_eq!(names(2), ["-80", "80-"]);
        assert_eq!(names(3), ["-55", "55-aa", "aa-"]);
        assert_eq!(names(4), ["-40", "40-80", "80-c0", "c0-"]);
        assert_eq!(names(5), ["-33", "33-66", "66-99", "99-cc", "cc-"]);
        assert_eq!(
            names(10),
            [
                "-19", "19-33", "33-4c", "4c-66", "66-7f", "7f-99", "99-b3", "b3-cc", "cc-e6",
                "e6-"
            ]
        );
    }

    #[test]
    fn equal_large_spot_checks() {
        for (parts, first, last) in [
            (16, "-10", "f0-"),
            (64, "-04", "fc-"),
            (129, "-01", "fe-"),
            (256, "-01", "ff-"),
            (500, "-0083", "ff7c-"),
            (512, "-0080", "ff80-"),
            (4096, "-0010", "fff0-"),
            (65536, "-0001", "ffff-"),
        ] {
            let got = names(parts);
            assert_eq!(got.len(), parts as usize);
            assert_eq!(got[0], first, "parts={parts}");
            assert_eq!(got[got.len() - 1], last, "parts={parts}");
        }
    }

    #[test]
    fn equal_partitions_cover_exactly() {
        for parts in 1..300 {
            assert_eq!(
                check_coverage(&equal_partitioning(parts)),
                [],
                "parts={parts}"
            );
        }
    }

    #[test]
    fn hex_width_pads_bounds() {
        let padded: Vec<String> = equal_ranges(2, Some(4))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(padded, ["-8000", "8000-"]);
        let auto: Vec<String> = equal_ranges(2, Some(0))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(auto, ["-80", "80-"]);
        assert_eq!(equal_ranges(0, None), [KeyRange::full()]);
    }

    #[test]
    fn safe_names() {
        assert_eq!(KeyRange::full().safe_name(), "x-x");
        assert_eq!(KeyRange::parse("-80").unwrap().safe_name(), "x-80");
        assert_eq!(KeyRange::parse("80-").unwrap().safe_name(), "80-x");
        assert_eq!(KeyRange::parse("40-80").unwrap().safe_name(), "40-80");
    }

    #[test]
    fn parse_rejects() {
        assert!(matches!(KeyRange::parse("80"), Err(Error::BadForm(_))));
        assert!(matches!(KeyRange::parse("8-"), Err(Error::BadBound(_))));
        assert!(matches!(KeyRange::parse("8A-"), Err(Error::BadBound(_))));
        assert!(matches!(KeyRange::parse("80-40"), Err(Error::Empty { .. })));
        assert!(matches!(
            KeyRange::parse("80-8000"),
            Err(Error::Empty { .. })
        ));
        assert!(KeyRange::parse("-").is_ok());
    }

    #[test]
    fn coverage_finds_overlaps_and_gaps() {
        let r = |s: &str| KeyRange::parse(s).unwrap();
        assert_eq!(check_coverage(&[r("-80"), r("80-")]), []);
        assert_eq!(
            check_coverage(&[r("-80"), r("40-")]),
            [Coverage::Overlap { a: 0, b: 1 }]
        );
        assert_eq!(
            check_coverage(&[r("-40"), r("80-")]),
            [Coverage::Gap {
                from: "40".into(),
                to: "80".into()
            }]
        );
        assert_eq!(
            check_coverage(&[r("-40"), r("40-80")]),
            [Coverage::Gap {
                from: "80".into(),
                to: String::new()
            }]
        );
        assert_eq!(
            check_coverage(&[r("10-")]),
            [Coverage::Gap {
                from: String::new(),
                to: "10".into()
            }]
        );
        // 80 and 8000 are the same cut point.
        assert_eq!(check_coverage(&[r("-80"), r("8000-")]), []);
    }
}

//! How to turn the ACL a device has into the intended one, entry by entry,
//! the way the devices really behave: IOS keeps no duplicate entry (an
//! entry that matches an existing one under another sequence number is
//! accepted and changes nothing), so an entry the new ACL keeps must stay
//! where it is, or be moved: deleted, then entered again.
//!
//! The plan aligns the old entries with the new (a longest common
//! subsequence in which permit/deny entries weigh far more than remarks, so
//! that as many rules as possible stay in place) and sorts every entry:
//! - **kept**: in both, in the same order: never touched;
//! - **added**: only in the new ACL: inserted, before anything is removed;
//! - **moved**: in both, but out of order: deleted, then inserted at its
//!   new place right after (the only moment an entry is missing);
//! - **removed**: only in the old ACL: deleted last.
//!
//! New and moved entries get sequence numbers between the kept entries
//! around them ([`Slots`]).

use super::ace::Entry;

/// Rules outweigh remarks: the alignment keeps the most rules in place
/// first, and only then the most remarks.
const RULE_WEIGHT: u32 = 1 << 16;

fn weight(e: &Entry) -> u32 {
    if e.is_rule() { RULE_WEIGHT } else { 1 }
}

/// What happens to every entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// (old index, new index) of entries that stay, in order.
    pub kept: Vec<(usize, usize)>,
    /// New indices of entries inserted (they are not on the device).
    pub added: Vec<usize>,
    /// (old index, new index) of entries deleted and inserted again.
    pub moved: Vec<(usize, usize)>,
    /// Old indices of entries deleted.
    pub removed: Vec<usize>,
}

impl Plan {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.moved.is_empty() && self.removed.is_empty()
    }

    /// New indices that are inserted (added or moved), in new order.
    pub fn inserted(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .added
            .iter()
            .copied()
            .chain(self.moved.iter().map(|(_, j)| *j))
            .collect();
        v.sort_unstable();
        v
    }

    /// For each inserted new index: the old index of the kept entry right
    /// before it (`None`: before every kept entry), and its rank among the
    /// entries inserted after that same kept entry (1, 2, …).
    pub fn gaps(&self) -> Vec<(usize, Option<usize>, usize)> {
        let mut out = Vec::new();
        let (mut k, mut prev, mut rank) = (0, None, 0);
        for j in self.inserted() {
            while k < self.kept.len() && self.kept[k].1 < j {
                prev = Some(self.kept[k].0);
                rank = 0;
                k += 1;
            }
            rank += 1;
            out.push((j, prev, rank));
        }
        out
    }

    /// The most entries inserted between two kept ones.
    pub fn widest_gap(&self) -> usize {
        self.gaps().iter().map(|g| g.2).max().unwrap_or(0)
    }
}

/// Plans the change from `old` to `new`.
pub fn plan(old: &[Entry], new: &[Entry]) -> Plan {
    let kept = align(old, new);
    let mut used_old = vec![false; old.len()];
    let mut used_new = vec![false; new.len()];
    for &(i, j) in &kept {
        used_old[i] = true;
        used_new[j] = true;
    }
    let mut moved = Vec::new();
    for j in 0..new.len() {
        if used_new[j] {
            continue;
        }
        if let Some(i) = (0..old.len()).find(|&i| !used_old[i] && old[i] == new[j]) {
            used_old[i] = true;
            used_new[j] = true;
            moved.push((i, j));
        }
    }
    Plan {
        kept,
        added: (0..new.len()).filter(|&j| !used_new[j]).collect(),
        moved,
        removed: (0..old.len()).filter(|&i| !used_old[i]).collect(),
    }
}

/// The weighted longest common subsequence, as (old, new) index pairs.
/// The common head and tail are matched first, so a large ACL with a few
/// changes costs little.
fn align(old: &[Entry], new: &[Entry]) -> Vec<(usize, usize)> {
    let head = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let tail = old[head..]
        .iter()
        .rev()
        .zip(new[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let (o, n) = (&old[head..old.len() - tail], &new[head..new.len() - tail]);
    let (rows, cols) = (o.len(), n.len());
    // best[i][j]: the weight of the best alignment of o[i..] with n[j..].
    let mut best = vec![0u32; (rows + 1) * (cols + 1)];
    let at = |i: usize, j: usize| i * (cols + 1) + j;
    for i in (0..rows).rev() {
        for j in (0..cols).rev() {
            let skip = best[at(i + 1, j)].max(best[at(i, j + 1)]);
            best[at(i, j)] = if o[i] == n[j] {
                skip.max(best[at(i + 1, j + 1)].saturating_add(weight(&o[i])))
            } else {
                skip
            };
        }
    }
    let mut pairs: Vec<(usize, usize)> = (0..head).map(|k| (k, k)).collect();
    let (mut i, mut j) = (0, 0);
    while i < rows && j < cols {
        if o[i] == n[j] && best[at(i, j)] == best[at(i + 1, j + 1)].saturating_add(weight(&o[i])) {
            pairs.push((head + i, head + j));
            i += 1;
            j += 1;
        } else if best[at(i + 1, j)] >= best[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs.extend((0..tail).map(|k| (old.len() - tail + k, new.len() - tail + k)));
    pairs
}

/// Sequence numbers for the entries a plan inserts.
pub struct Slots;

impl Slots {
    /// After `resequence NAME step step`, old entry `k` is `step × (k+1)`;
    /// the `r`-th entry inserted after old entry `p` is `step × (p+1) + 10 r`.
    /// Returns the step (a multiple of 10 wide enough for the widest gap)
    /// and each inserted new index's number.
    pub fn after_resequence(plan: &Plan) -> (u64, Vec<(usize, u64)>) {
        let step = 10 * (plan.widest_gap() as u64 + 1);
        let numbers = plan
            .gaps()
            .into_iter()
            .map(|(j, prev, rank)| {
                let base = prev.map_or(0, |p| step * (p as u64 + 1));
                (j, base + 10 * rank as u64)
            })
            .collect();
        (step, numbers)
    }

    /// With the device's own numbers (`old_seq[k]`), when every gap has
    /// room: entries spread evenly between the kept ones around them (after
    /// the last one, 10 apart). `None` when a gap is too narrow.
    pub fn between(plan: &Plan, old_seq: &[u64], max: u64) -> Option<Vec<(usize, u64)>> {
        let gaps = plan.gaps();
        let mut out = Vec::with_capacity(gaps.len());
        for (j, prev, rank) in &gaps {
            let count = gaps.iter().filter(|g| g.1 == *prev).count() as u64;
            let low = prev.map_or(0, |p| old_seq[p]);
            // The next kept entry after `prev`.
            let high = plan
                .kept
                .iter()
                .map(|(i, _)| *i)
                .find(|i| prev.is_none_or(|p| *i > p))
                .map(|i| old_seq[i]);
            let seq = match high {
                Some(h) if h > low + count => low + (h - low) * *rank as u64 / (count + 1),
                Some(_) => return None,
                None => low + 10 * *rank as u64,
            };
            if seq == 0 || seq > max {
                return None;
            }
            out.push((*j, seq));
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(s: &str) -> Vec<Entry> {
        s.split(',')
            .filter(|x| !x.is_empty())
            .map(|x| {
                if let Some(r) = x.strip_prefix('#') {
                    Entry::Remark(r.into())
                } else {
                    Entry::Rule(x.into())
                }
            })
            .collect()
    }

    #[test]
    fn keeps_what_stays_and_moves_what_does_not() {
        let p = plan(&rules("a,b,c"), &rules("x,b,c"));
        assert_eq!(p.kept, [(1, 1), (2, 2)]);
        assert_eq!((p.added.clone(), p.removed.clone()), (vec![0], vec![0]));
        assert!(p.moved.is_empty());
        let p = plan(&rules("a,b"), &rules("b,a"));
        assert_eq!(p.kept.len(), 1);
        assert_eq!(p.moved.len(), 1);
        assert!(p.added.is_empty() && p.removed.is_empty());
        assert!(plan(&rules("a,b"), &rules("a,b")).is_empty());
    }

    #[test]
    fn rules_stay_in_place_before_remarks_do() {
        // One can stay: the rule, not the remark (moving the rule would
        // leave only a remark for a moment: an ACL that filters nothing).
        let p = plan(&rules("#r,a"), &rules("a,#r"));
        assert_eq!(p.kept, [(1, 0)]);
        assert_eq!(p.moved, [(0, 1)]);
    }

    #[test]
    fn slots_fit_between_kept_entries() {
        let p = plan(&rules("a,b,c"), &rules("n1,a,n2,n3,c,n4"));
        let (step, numbers) = Slots::after_resequence(&p);
        assert_eq!(step, 30);
        // a=30 b=60 c=90 after resequence 30 30.
        assert_eq!(numbers, [(0, 10), (2, 40), (3, 50), (5, 100)]);
        let between = Slots::between(&p, &[10, 20, 30], 2_147_483_647).unwrap();
        assert_eq!(between, [(0, 5), (2, 16), (3, 23), (5, 40)]);
        // No room between 10 and 11.
        assert!(Slots::between(&p, &[10, 11, 11], 2_147_483_647).is_none());
    }
}

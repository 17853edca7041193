//! The difference between two entry lists, in order (longest common
//! subsequence), as `- removed` / `+ added` lines.

use super::ace::Entry;

/// `before`/`after` are compared; `shown_before`/`shown_after` are what is
/// printed (the device's text and the engineer's text).
pub fn diff_shown(
    before: &[Entry],
    shown_before: &[String],
    after: &[Entry],
    shown_after: &[String],
) -> Vec<String> {
    let text = |shown: &[String], all: &[Entry], i: usize| {
        shown.get(i).cloned().unwrap_or_else(|| all[i].to_string())
    };
    diff_indexes(before, after)
        .into_iter()
        .map(|(removed, i)| {
            if removed {
                format!("- {}", text(shown_before, before, i))
            } else {
                format!("+ {}", text(shown_after, after, i))
            }
        })
        .collect()
}

#[cfg(test)]
pub fn diff(before: &[Entry], after: &[Entry]) -> Vec<String> {
    diff_shown(before, &[], after, &[])
}

/// (removed?, index) pairs in display order.
fn diff_indexes(before: &[Entry], after: &[Entry]) -> Vec<(bool, usize)> {
    let (n, m) = (before.len(), after.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if before[i] == after[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push((true, i));
            i += 1;
        } else {
            out.push((false, j));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_removed_and_added_in_order() {
        let e = |s: &str| Entry::Rule(s.into());
        let d = diff(&[e("a"), e("b"), e("c")], &[e("a"), e("x"), e("c")]);
        assert_eq!(d, ["- b", "+ x"]);
        assert!(diff(&[e("a")], &[e("a")]).is_empty());
    }
}

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Which tools of one server a grant admits. Tool names match exactly
/// (case-sensitive) everywhere.
///
/// JSON form: `"*"`, `["a", "b"]` or `{"except": ["c"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "FilterRepr", into = "FilterRepr")]
pub enum ToolFilter {
    /// `"*"`: every tool.
    All,
    /// `["a", "b"]`: only these tools.
    Only(BTreeSet<String>),
    /// `{"except": ["c"]}`: every tool but these (never empty: that is `All`).
    Except(BTreeSet<String>),
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum FilterRepr {
    Star(String),
    Only(BTreeSet<String>),
    Except(ExceptRepr),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExceptRepr {
    except: BTreeSet<String>,
}

impl TryFrom<FilterRepr> for ToolFilter {
    type Error = String;
    fn try_from(repr: FilterRepr) -> Result<Self, String> {
        match repr {
            FilterRepr::Star(s) if s == "*" => Ok(ToolFilter::All),
            FilterRepr::Star(s) => Err(format!(
                "tool filter {s:?} is not one of \"*\", [\"tool\", ...] or {{\"except\": [\"tool\", ...]}}"
            )),
            FilterRepr::Only(set) => Ok(ToolFilter::Only(set)),
            FilterRepr::Except(e) => Ok(ToolFilter::except(e.except)),
        }
    }
}

impl From<ToolFilter> for FilterRepr {
    fn from(f: ToolFilter) -> Self {
        match f {
            ToolFilter::All => FilterRepr::Star("*".into()),
            ToolFilter::Only(set) => FilterRepr::Only(set),
            ToolFilter::Except(except) => FilterRepr::Except(ExceptRepr { except }),
        }
    }
}

impl ToolFilter {
    /// Admits nothing: the identity of [`ToolFilter::union`].
    pub fn none() -> Self {
        ToolFilter::Only(BTreeSet::new())
    }

    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(tools: I) -> Self {
        ToolFilter::Only(tools.into_iter().map(Into::into).collect())
    }

    pub fn except<I: IntoIterator<Item = S>, S: Into<String>>(tools: I) -> Self {
        let except: BTreeSet<String> = tools.into_iter().map(Into::into).collect();
        if except.is_empty() {
            ToolFilter::All
        } else {
            ToolFilter::Except(except)
        }
    }

    /// Does this filter admit `tool`? Exact, case-sensitive match.
    #[inline]
    pub fn admits(&self, tool: &str) -> bool {
        match self {
            ToolFilter::All => true,
            ToolFilter::Only(set) => set.contains(tool),
            ToolFilter::Except(except) => !except.contains(tool),
        }
    }

    /// Admits no tool at all.
    pub fn is_empty(&self) -> bool {
        matches!(self, ToolFilter::Only(set) if set.is_empty())
    }

    /// Tools admitted by `self` or by `other` (union within one scope level).
    pub fn union(&self, other: &ToolFilter) -> ToolFilter {
        use ToolFilter::*;
        match (self, other) {
            (All, _) | (_, All) => All,
            (Only(a), Only(b)) => Only(a.union(b).cloned().collect()),
            (Only(a), Except(c)) | (Except(c), Only(a)) => {
                ToolFilter::except(c.difference(a).cloned())
            }
            (Except(c), Except(d)) => ToolFilter::except(c.intersection(d).cloned()),
        }
    }

    /// Tools admitted by both (every level must admit).
    pub fn intersect(&self, other: &ToolFilter) -> ToolFilter {
        use ToolFilter::*;
        match (self, other) {
            (All, x) | (x, All) => x.clone(),
            (Only(a), Only(b)) => Only(a.intersection(b).cloned().collect()),
            (Only(a), Except(c)) | (Except(c), Only(a)) => Only(a.difference(c).cloned().collect()),
            (Except(c), Except(d)) => ToolFilter::except(c.union(d).cloned()),
        }
    }

    /// Is every tool `self` admits also admitted by `outer`? Over an open
    /// universe of tool names: an all-but filter is never inside an only-these
    /// filter, since a server can add tools at any time.
    pub fn is_subset_of(&self, outer: &ToolFilter) -> bool {
        use ToolFilter::*;
        match (self, outer) {
            (_, All) => true,
            (Only(a), Only(b)) => a.is_subset(b),
            (Only(a), Except(c)) => a.is_disjoint(c),
            (All, Only(_)) | (Except(_), Only(_)) => false,
            (All, Except(_)) => false,
            (Except(c), Except(d)) => d.is_subset(c),
        }
    }

    /// Tools named in `self` that `outer` does not admit, for error messages.
    /// Empty with `is_subset_of == false` means the excess is open-ended
    /// (`*` or an all-but filter inside an only-these or narrower filter).
    pub fn excess_over(&self, outer: &ToolFilter) -> Vec<String> {
        match self {
            ToolFilter::Only(a) => a.iter().filter(|t| !outer.admits(t)).cloned().collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_round_trip() {
        let cases = [
            ("\"*\"", ToolFilter::All),
            ("[\"a\",\"b\"]", ToolFilter::only(["a", "b"])),
            ("{\"except\":[\"c\"]}", ToolFilter::except(["c"])),
        ];
        for (json, filter) in cases {
            let parsed: ToolFilter = serde_json::from_str(json).unwrap();
            assert_eq!(parsed, filter);
            assert_eq!(serde_json::to_string(&filter).unwrap(), json);
        }
    }

    #[test]
    fn bad_json_forms_are_rejected() {
        for json in [
            "\"all\"",
            "{\"only\":[\"a\"]}",
            "{\"except\":[\"a\"],\"x\":1}",
            "3",
        ] {
            assert!(serde_json::from_str::<ToolFilter>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn matching_is_case_sensitive() {
        let f = ToolFilter::only(["Search"]);
        assert!(f.admits("Search"));
        assert!(!f.admits("search"));
        let e = ToolFilter::except(["Delete"]);
        assert!(e.admits("delete"));
        assert!(!e.admits("Delete"));
    }

    #[test]
    fn algebra_agrees_with_admits() {
        let filters = [
            ToolFilter::All,
            ToolFilter::none(),
            ToolFilter::only(["a", "b"]),
            ToolFilter::only(["b", "c"]),
            ToolFilter::except(["a"]),
            ToolFilter::except(["b", "c"]),
        ];
        let tools = ["a", "b", "c", "d"];
        for x in &filters {
            for y in &filters {
                for t in tools {
                    assert_eq!(x.union(y).admits(t), x.admits(t) || y.admits(t));
                    assert_eq!(x.intersect(y).admits(t), x.admits(t) && y.admits(t));
                    if x.is_subset_of(y) {
                        assert!(!x.admits(t) || y.admits(t), "{x:?} <= {y:?} at {t}");
                    }
                }
            }
        }
    }
}

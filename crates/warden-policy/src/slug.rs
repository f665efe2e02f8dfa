use crate::error::PolicyError;

/// Longest slug accepted. Short enough that `slug__tool` stays within MCP's
/// 128-character tool-name limit for ordinary tool names.
pub const SLUG_MAX_LEN: usize = 48;

/// A slug is lowercase ASCII letters and digits, in words joined by single
/// hyphens: `github`, `jira-cloud`, `team-42`. No underscores, so a gateway can
/// prefix tool names with `slug__` and split them back without ambiguity.
pub fn validate_slug(kind: &'static str, slug: &str) -> Result<(), PolicyError> {
    let bad = |why: &str| PolicyError::BadSlug {
        kind,
        slug: slug.to_owned(),
        why: why.to_owned(),
    };
    if slug.is_empty() {
        return Err(bad("must not be empty"));
    }
    if slug.len() > SLUG_MAX_LEN {
        return Err(bad(&format!("must be at most {SLUG_MAX_LEN} characters")));
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(bad("may contain only a-z, 0-9 and '-'"));
    }
    if slug.starts_with('-') || slug.ends_with('-') || slug.contains("--") {
        return Err(bad(
            "hyphens must join words: no leading, trailing or double '-'",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_slugs() {
        for s in ["a", "github", "jira-cloud", "team-42", "0x"] {
            assert!(validate_slug("server", s).is_ok(), "{s}");
        }
    }

    #[test]
    fn rejects_bad_slugs_with_a_reason() {
        for s in [
            "",
            "GitHub",
            "a_b",
            "-a",
            "a-",
            "a--b",
            "a b",
            "é",
            &"x".repeat(49),
        ] {
            let err = validate_slug("server", s).unwrap_err();
            assert!(err.to_string().contains("server slug"), "{err}");
        }
    }
}

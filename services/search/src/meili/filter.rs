//! The Meilisearch filter expression for a query's filters.
//!
//! Values are always double-quoted with `\` and `"` escaped, so no value can end the string
//! early and add a clause of its own; Meilisearch unescapes them back to the exact value.

use crate::SearchQuery;

/// `owner_id = "…" AND status = "…" AND category = "…"`, for the filters that are set.
pub(super) fn expression(query: &SearchQuery) -> Option<String> {
    let owner = query.owner_id.map(|owner| owner.to_string());
    let clauses: Vec<String> =
        [("owner_id", owner.as_deref()), ("status", query.status.as_deref()), ("category", query.category.as_deref())]
            .into_iter()
            .filter_map(|(attribute, value)| value.map(|value| format!("{attribute} = {}", quote(value))))
            .collect();
    (!clauses.is_empty()).then(|| clauses.join(" AND "))
}

/// `value` as a double-quoted filter string.
pub(super) fn quote(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn no_filter_gives_no_expression() {
        assert_eq!(expression(&SearchQuery::text("bmw")), None);
    }

    #[test]
    fn filters_are_joined_with_and() {
        let owner = Uuid::from_u128(7);
        let query = SearchQuery {
            owner_id: Some(owner),
            status: Some("active".into()),
            category: Some("suv".into()),
            ..SearchQuery::default()
        };
        assert_eq!(
            expression(&query).unwrap(),
            format!(r#"owner_id = "{owner}" AND status = "active" AND category = "suv""#)
        );
    }

    #[test]
    fn quotes_and_backslashes_cannot_break_out() {
        let query =
            SearchQuery { status: Some(r#"x" OR owner_id EXISTS OR status = "\"#.into()), ..SearchQuery::default() };
        assert_eq!(expression(&query).unwrap(), r#"status = "x\" OR owner_id EXISTS OR status = \"\\""#);
    }
}

//! Search in the peer: the filter subset the adapter emits, typo-tolerant word matching, sort.

use std::cmp::Ordering;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::state::IndexData;

/// The search parameters the adapter sends; anything else is refused.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    q: Option<String>,
    offset: Option<usize>,
    limit: Option<usize>,
    filter: Option<String>,
    sort: Option<Vec<String>>,
    attributes_to_retrieve: Option<Vec<String>>,
}

type Refusal = (&'static str, String);

pub fn run(index: &IndexData, request: &Request) -> Result<Value, Refusal> {
    let settings = &index.settings;
    let filterable = string_list(settings, "filterableAttributes");
    let sortable = string_list(settings, "sortableAttributes");
    let clauses = match &request.filter {
        Some(filter) => parse_filter(filter).map_err(|message| ("invalid_search_filter", message))?,
        None => Vec::new(),
    };
    if let Some((attribute, _)) = clauses.iter().find(|(attribute, _)| !filterable.contains(attribute)) {
        return Err(("invalid_search_filter", format!("Attribute `{attribute}` is not filterable.")));
    }
    let sort = parse_sort(request.sort.as_deref().unwrap_or_default(), &sortable)?;
    let query_words: Vec<String> = words(request.q.as_deref().unwrap_or_default()).into_iter().take(10).collect();
    let typos = TypoRules::from(settings);

    let mut hits: Vec<((u32, usize), &Value)> = index
        .documents
        .values()
        .filter(|document| {
            clauses.iter().all(|(attribute, value)| {
                field_text(document, attribute).is_some_and(|v| v.to_lowercase() == value.to_lowercase())
            })
        })
        .filter_map(|document| text_rank(document, settings, &query_words, &typos).map(|rank| (rank, document)))
        .collect();
    hits.sort_by(|(left_rank, left), (right_rank, right)| {
        left_rank.cmp(right_rank).then_with(|| compare_by(&sort, left, right))
    });

    let total = hits.len();
    let offset = request.offset.unwrap_or(0);
    let limit = request.limit.unwrap_or(20);
    let retrieve = request.attributes_to_retrieve.clone().unwrap_or_else(|| vec!["*".into()]);
    let page: Vec<Value> =
        hits.into_iter().skip(offset).take(limit).map(|(_, document)| project(document, &retrieve)).collect();
    Ok(json!({
        "hits": page,
        "query": request.q.clone().unwrap_or_default(),
        "processingTimeMs": 0,
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": total,
    }))
}

fn string_list(settings: &Map<String, Value>, key: &str) -> Vec<String> {
    settings
        .get(key)
        .and_then(Value::as_array)
        .map(|values| values.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `attribute = "value"` clauses joined by ` AND `; `\` escapes the next character.
fn parse_filter(filter: &str) -> Result<Vec<(String, String)>, String> {
    let mut clauses = Vec::new();
    let mut rest = filter.trim_start();
    loop {
        let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        if end == 0 {
            return Err(format!("expected an attribute at `{rest}`"));
        }
        let attribute = rest[..end].to_owned();
        rest = rest[end..].trim_start();
        rest = rest.strip_prefix('=').ok_or_else(|| format!("expected `=` at `{rest}`"))?.trim_start();
        rest = rest.strip_prefix('"').ok_or_else(|| format!("expected a quoted value at `{rest}`"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let close = loop {
            match chars.next() {
                Some((_, '\\')) => value.push(chars.next().ok_or("a value ends in `\\`")?.1),
                Some((at, '"')) => break at,
                Some((_, c)) => value.push(c),
                None => return Err("missing closing delimiter `\"`".into()),
            }
        };
        clauses.push((attribute, value));
        rest = rest[close + 1..].trim_start();
        if rest.is_empty() {
            return Ok(clauses);
        }
        rest = rest.strip_prefix("AND ").ok_or_else(|| format!("expected `AND` at `{rest}`"))?.trim_start();
    }
}

enum Direction {
    Asc,
    Desc,
}

fn parse_sort(sort: &[String], sortable: &[String]) -> Result<Vec<(String, Direction)>, Refusal> {
    sort.iter()
        .map(|rule| {
            let (attribute, direction) = match rule.rsplit_once(':') {
                Some((attribute, "asc")) => (attribute, Direction::Asc),
                Some((attribute, "desc")) => (attribute, Direction::Desc),
                _ => return Err(("invalid_search_sort", format!("`{rule}` is not `attribute:asc|desc`."))),
            };
            if !sortable.iter().any(|s| s == attribute) {
                return Err(("invalid_search_sort", format!("Attribute `{attribute}` is not sortable.")));
            }
            Ok((attribute.to_owned(), direction))
        })
        .collect()
}

fn compare_by(sort: &[(String, Direction)], left: &Value, right: &Value) -> Ordering {
    sort.iter()
        .map(|(attribute, direction)| {
            let order = compare_values(left.get(attribute), right.get(attribute));
            match direction {
                Direction::Asc => order,
                Direction::Desc => order.reverse(),
            }
        })
        .find(|order| order.is_ne())
        .unwrap_or(Ordering::Equal)
}

fn compare_values(left: Option<&Value>, right: Option<&Value>) -> Ordering {
    match (left, right) {
        (Some(Value::Number(l)), Some(Value::Number(r))) => l.as_i64().cmp(&r.as_i64()),
        (Some(Value::String(l)), Some(Value::String(r))) => l.cmp(r),
        (l, r) => l.is_some().cmp(&r.is_some()),
    }
}

fn field_text(document: &Value, attribute: &str) -> Option<String> {
    match document.get(attribute)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn project(document: &Value, retrieve: &[String]) -> Value {
    if retrieve.iter().any(|a| a == "*") {
        return document.clone();
    }
    let fields = retrieve.iter().filter_map(|a| document.get(a).map(|v| (a.clone(), v.clone()))).collect::<Map<_, _>>();
    Value::Object(fields)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

struct TypoRules {
    enabled: bool,
    one_typo: usize,
    two_typos: usize,
    disabled_on: Vec<String>,
}

impl From<&Map<String, Value>> for TypoRules {
    fn from(settings: &Map<String, Value>) -> Self {
        let tolerance = settings.get("typoTolerance").cloned().unwrap_or(Value::Null);
        let size =
            |key: &str, default: usize| tolerance["minWordSizeForTypos"][key].as_u64().map_or(default, |n| n as usize);
        TypoRules {
            enabled: tolerance["enabled"].as_bool().unwrap_or(true),
            one_typo: size("oneTypo", 5),
            two_typos: size("twoTypos", 9),
            disabled_on: tolerance["disableOnAttributes"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }
}

impl TypoRules {
    fn budget(&self, word: &str, attribute: &str) -> usize {
        let length = word.chars().count();
        if !self.enabled || self.disabled_on.iter().any(|a| a == attribute) {
            0
        } else if length >= self.two_typos {
            2
        } else if length >= self.one_typo {
            1
        } else {
            0
        }
    }
}

/// `(typos, words not matched exactly)` when every query word matches, lower is better.
fn text_rank(
    document: &Value,
    settings: &Map<String, Value>,
    query: &[String],
    typos: &TypoRules,
) -> Option<(u32, usize)> {
    let searchable = string_list(settings, "searchableAttributes");
    let attributes: Vec<String> = if searchable.is_empty() || searchable.iter().any(|a| a == "*") {
        document.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    } else {
        searchable
    };
    let tokens: Vec<(String, &str)> = attributes
        .iter()
        .filter_map(|attribute| field_text(document, attribute).map(|text| (text, attribute.as_str())))
        .flat_map(|(text, attribute)| words(&text).into_iter().map(move |word| (word, attribute)))
        .collect();
    let mut total_typos = 0;
    let mut inexact = 0;
    for (position, word) in query.iter().enumerate() {
        let is_last = position + 1 == query.len();
        let best = tokens
            .iter()
            .filter_map(|(token, attribute)| word_match(word, token, typos.budget(word, attribute), is_last))
            .min()?;
        total_typos += best.0;
        inexact += usize::from(!best.1);
    }
    Some((total_typos, inexact))
}

/// `(typos, exact)` if `word` matches `token`.
fn word_match(word: &str, token: &str, budget: usize, is_last: bool) -> Option<(u32, bool)> {
    if word == token {
        return Some((0, true));
    }
    if is_last && token.starts_with(word) {
        return Some((0, false));
    }
    let whole = distance(word, token);
    let prefix = if is_last {
        let length = word.chars().count();
        let head: String = token.chars().take(length).collect();
        distance(word, &head)
    } else {
        usize::MAX
    };
    let typos = whole.min(prefix);
    (typos > 0 && typos <= budget).then_some((typos as u32, false))
}

/// Levenshtein distance where swapping two neighbours counts as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

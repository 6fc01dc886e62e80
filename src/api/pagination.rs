//! List endpoints: `limit`, `order`, `after`, `before` over objects whose ids sort by
//! creation time, so paging is a matter of comparing names.

use crate::error::ApiError;
use crate::store::{self, keys, DynStore};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: usize,
    pub order: Order,
    pub after: Option<String>,
    pub before: Option<String>,
}

/// Query parameters as the client sent them (repeated names allowed).
pub type Query = [(String, String)];

pub fn query_value<'a>(query: &'a Query, name: &str) -> Option<&'a str> {
    query
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

impl ListQuery {
    /// Reads the paging parameters; `max_limit` is 100 for every list but files.
    pub fn parse(query: &Query, max_limit: usize, default_limit: usize) -> Result<Self, ApiError> {
        let limit = match query_value(query, "limit") {
            None => default_limit,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n >= 1 && n as u64 <= max_limit as u64 => n as usize,
                Ok(n) if n < 1 => {
                    return Err(ApiError::invalid_param(
                        "limit",
                        format!(
                            "Invalid 'limit': integer below minimum value. Expected a value \
                             greater than or equal to 1, but got {n} instead."
                        ),
                    ))
                }
                Ok(n) => {
                    return Err(ApiError::invalid_param(
                        "limit",
                        format!(
                            "Invalid 'limit': integer above maximum value. Expected a value \
                             less than or equal to {max_limit}, but got {n} instead."
                        ),
                    ))
                }
                Err(_) => {
                    return Err(ApiError::invalid_param(
                        "limit",
                        format!(
                            "Invalid 'limit': '{}' is not an integer.",
                            crate::error::shown(raw)
                        ),
                    ))
                }
            },
        };
        let order = match query_value(query, "order") {
            None | Some("desc") => Order::Desc,
            Some("asc") => Order::Asc,
            Some(other) => {
                return Err(ApiError::invalid_param(
                    "order",
                    format!(
                        "Invalid value: '{}'. Supported values are: 'asc' and 'desc'.",
                        crate::error::shown(other)
                    ),
                ))
            }
        };
        let cursor = |name: &str| {
            query_value(query, name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(ListQuery {
            limit,
            order,
            after: cursor("after"),
            before: cursor("before"),
        })
    }

    /// Ids in list order.
    fn ordered(&self, mut ids: Vec<String>) -> Vec<String> {
        ids.sort_unstable();
        if self.order == Order::Desc {
            ids.reverse();
        }
        ids
    }

    /// Whether `id` lies strictly after `cursor` in this list's order.
    fn is_after(&self, id: &str, cursor: &str) -> bool {
        match self.order {
            Order::Asc => id > cursor,
            Order::Desc => id < cursor,
        }
    }

    /// The ids that remain eligible after the cursors, in list order.
    pub fn window(&self, ids: Vec<String>) -> Vec<String> {
        self.ordered(ids)
            .into_iter()
            .filter(|id| self.after.as_deref().is_none_or(|a| self.is_after(id, a)))
            .filter(|id| self.before.as_deref().is_none_or(|b| self.is_after(b, id)))
            .collect()
    }

    /// Cuts one page out of the eligible ids: the first `limit` ones, or with only `before`
    /// the `limit` ones nearest to it. Returns the page and `has_more`.
    pub fn page(&self, eligible: Vec<String>) -> (Vec<String>, bool) {
        if self.before.is_some() && self.after.is_none() {
            let skip = eligible.len().saturating_sub(self.limit);
            (eligible[skip..].to_vec(), skip > 0)
        } else {
            let has_more = eligible.len() > self.limit;
            let mut page = eligible;
            page.truncate(self.limit);
            (page, has_more)
        }
    }
}

/// The list object every list endpoint answers with.
pub fn list_body<T: Serialize>(data: &[T], ids: &[String], has_more: bool) -> Value {
    json!({
        "object": "list",
        "data": data,
        "first_id": ids.first(),
        "last_id": ids.last(),
        "has_more": has_more,
    })
}

/// A list of stored records answered as API objects: their internal fields (those whose
/// names start with `_`) left out.
pub fn without_internal_fields(mut page: Value) -> Value {
    if let Some(data) = page.get_mut("data").and_then(Value::as_array_mut) {
        for item in data.iter_mut() {
            if let Some(obj) = item.as_object_mut() {
                obj.retain(|k, _| !k.starts_with('_'));
            }
        }
    }
    page
}

/// How many objects a filtered list reads per batch (at least).
const READ_BATCH: usize = 16;

/// A whole list response for the objects directly under `prefix`, optionally filtered.
/// Without a filter it reads only the page's objects; with one it reads in list order until
/// the page is full.
pub async fn list_objects<T, F>(
    store: &DynStore,
    prefix: &str,
    query: &ListQuery,
    id_of: impl Fn(&T) -> &str,
    filter: Option<F>,
) -> Result<Value, ApiError>
where
    T: DeserializeOwned + Serialize + Send + 'static,
    F: Fn(&T) -> bool,
{
    let ids: Vec<String> = store::list_all(store.as_ref(), prefix)
        .await?
        .iter()
        .filter(|k| !k[prefix.len()..].contains('/'))
        .map(|k| keys::last_segment(k).to_string())
        .collect();
    let eligible = query.window(ids);
    let Some(filter) = filter else {
        let (page, has_more) = query.page(eligible);
        let objects: Vec<T> = store::read_all(store.as_ref(), prefix, &page).await?;
        let ids: Vec<String> = objects.iter().map(|o| id_of(o).to_string()).collect();
        return Ok(list_body(&objects, &ids, has_more));
    };
    // Filtered: read in batches until the page is full (with `before` alone, from the end).
    let from_end = query.before.is_some() && query.after.is_none();
    let mut candidates = eligible;
    if from_end {
        candidates.reverse();
    }
    let mut kept: Vec<T> = Vec::new();
    let mut has_more = false;
    for batch in candidates.chunks(query.limit.max(READ_BATCH)) {
        let objects: Vec<T> = store::read_all(store.as_ref(), prefix, batch).await?;
        for o in objects {
            if filter(&o) {
                if kept.len() == query.limit {
                    has_more = true;
                    break;
                }
                kept.push(o);
            }
        }
        if has_more {
            break;
        }
    }
    if from_end {
        kept.reverse();
    }
    let ids: Vec<String> = kept.iter().map(|o| id_of(o).to_string()).collect();
    Ok(list_body(&kept, &ids, has_more))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("id{i:03}")).collect()
    }

    fn q(pairs: &[(&str, &str)]) -> ListQuery {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListQuery::parse(&pairs, 100, 20).unwrap()
    }

    #[test]
    fn desc_pages_walk_backwards_with_after() {
        let query = q(&[("limit", "20")]);
        let (page, more) = query.page(query.window(ids(45)));
        assert_eq!(page.first().unwrap(), "id044");
        assert_eq!(page.len(), 20);
        assert!(more);
        let query = q(&[("after", "id005")]);
        let (page, more) = query.page(query.window(ids(45)));
        assert_eq!(page, vec!["id004", "id003", "id002", "id001", "id000"]);
        assert!(!more);
    }

    #[test]
    fn before_takes_the_nearest_items() {
        let query = q(&[("order", "asc"), ("before", "id030"), ("limit", "5")]);
        let (page, more) = query.page(query.window(ids(45)));
        assert_eq!(page, vec!["id025", "id026", "id027", "id028", "id029"]);
        assert!(more);
    }

    #[test]
    fn bad_limits_and_orders_are_400s() {
        let bad = |k: &str, v: &str| {
            ListQuery::parse(&[(k.to_string(), v.to_string())], 100, 20).unwrap_err()
        };
        assert_eq!(bad("limit", "0").param(), Some("limit"));
        assert_eq!(bad("limit", "101").param(), Some("limit"));
        assert_eq!(bad("limit", "x").param(), Some("limit"));
        assert_eq!(bad("order", "up").param(), Some("order"));
    }
}

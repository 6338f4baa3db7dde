//! The config model as a tree of values (`section.option` keys), shared by [`super::reload`]
//! (which keys changed, which keep their running value) and the admin page's settings form.

use toml::{Table, Value};

use crate::config::Config;

/// The model as a tree of `section.option` values.
pub fn tree(config: &Config) -> Table {
    match Value::try_from(config) {
        Ok(Value::Table(t)) => t,
        // Only sizes beyond i64 fail to serialize, and validation refuses those.
        _ => Table::new(),
    }
}

/// The value at `section.option` (or a top-level key).
pub fn lookup<'a>(tree: &'a Table, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        Some((section, option)) => tree.get(section)?.as_table()?.get(option),
        None => tree.get(key),
    }
}

/// Sets (`Some`) or removes (`None`) the value at `section.option`.
pub fn set(tree: &mut Table, key: &str, value: Option<Value>) {
    let (table, option) = match key.split_once('.') {
        Some((section, option)) => {
            let t = tree
                .entry(section)
                .or_insert_with(|| Value::Table(Table::new()));
            let Value::Table(t) = t else { return };
            (t, option)
        }
        None => (tree, key),
    };
    match value {
        Some(v) => {
            table.insert(option.to_owned(), v);
        }
        None => {
            table.remove(option);
        }
    }
}

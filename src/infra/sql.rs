//! Hand-written SQL for both databases: written once with `?` placeholders,
//! numbered `$1, $2, …` for PostgreSQL. For the few queries the query builder
//! would make harder to read (CTEs, correlated subqueries).

use sea_orm::{DbBackend, Statement, Value};

/// A statement for `backend` from SQL with `?` placeholders (and no `?` in
/// its string literals) and its values in order.
pub fn statement(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DbBackend::Postgres => number_placeholders(sql),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

fn number_placeholders(sql: &str) -> String {
    let mut numbered = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    for c in sql.chars() {
        if c == '?' {
            next += 1;
            numbered.push('$');
            numbered.push_str(&next.to_string());
        } else {
            numbered.push(c);
        }
    }
    numbered
}

/// `?, ?, ?` for `n` values: an `IN (…)` list.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_for_postgres() {
        assert_eq!(
            number_placeholders("a = ? AND b IN (?, ?)"),
            "a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(placeholders(3), "?, ?, ?");
    }
}

//! Quoting names and values into SQL and replication commands: the one place for it. Pure (the
//! fuzz build compiles it, for `cleanup`).

/// `"name"`, embedded `"` doubled: an identifier in SQL or a replication command.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'value'`, embedded `'` doubled: a string literal in a replication command.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_doubled() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("Outbox"), "\"Outbox\"");
    }
}

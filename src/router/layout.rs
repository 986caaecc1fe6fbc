//! Where the router's columns sit in one outbox table's rows: a pgoutput `Relation` checked
//! against the options and the converters once, when the relation is learnt, so that routing a
//! row needs no lookups by name and no type checks.
//!
//! Owns [`TableLayout`] and its construction. It must not route rows (that is `route`).

use std::collections::HashSet;

use super::columns::Kind;
use super::options::{Placement, PlacementTarget};
use super::{RouteError, Router};
use crate::convert::{Field, Schema, Type};
use crate::source::pgoutput::Relation;

/// One column of an outbox table, typed.
#[derive(Debug, Clone)]
pub(super) struct Column {
    pub(super) name: String,
    pub(super) index: usize,
    pub(super) kind: Kind,
    pub(super) schema: Schema,
}

/// Where the router's columns sit in one outbox table's rows.
#[derive(Debug, Clone)]
pub(super) struct TableLayout {
    pub(super) table: String,
    /// The name Debezium gives the row's value schema: `<topic.prefix>.<schema>.<table>.Value`.
    pub(super) debezium_schema_prefix: String,
    pub(super) id: Column,
    pub(super) key: Column,
    pub(super) payload: Column,
    pub(super) route_by: Column,
    pub(super) timestamp: Option<Column>,
    pub(super) schema_version: Option<Column>,
    /// Placements whose column exists, in configuration order.
    pub(super) placements: Vec<(Placement, Column)>,
    pub(super) tracing: Option<Column>,
    /// The relation's schema and name, for Debezium's source block.
    pub(super) namespace: String,
    pub(super) name: String,
    /// CloudEvents binary mode: the `ce_id`, `ce_type` and `ce_subject` columns.
    pub(super) cloudevents: Option<CloudEventColumns>,
}

/// The columns of the CloudEvents binary mode's attributes.
#[derive(Debug, Clone)]
pub(super) struct CloudEventColumns {
    pub(super) id: Column,
    pub(super) event_type: Column,
    pub(super) subject: Option<Column>,
}

impl Router {
    /// Where the router's columns sit in `relation`'s rows, checked against the options and the
    /// converters. `table` names the relation in errors and metrics; `schema_prefix` starts the
    /// envelope value schema's name; `not_null`: the NOT NULL columns, when known.
    pub(super) fn layout(
        &self,
        relation: &Relation,
        table: String,
        schema_prefix: String,
        not_null: Option<&HashSet<String>>,
    ) -> Result<TableLayout, RouteError> {
        let find = |name: &str| -> Option<Column> {
            let index = relation.columns.iter().position(|c| c.name == name)?;
            let c = &relation.columns[index];
            let required = match not_null {
                Some(set) => set.contains(name),
                None => c.flags & 1 == 1,
            };
            let kind = Kind::of(c.type_oid, c.type_modifier);
            Some(Column {
                name: name.to_string(),
                index,
                kind,
                schema: kind.schema(!required),
            })
        };
        let column = |name: &str, option: &'static str| -> Result<Column, RouteError> {
            find(name).ok_or_else(|| RouteError::MissingColumn {
                table: table.clone(),
                column: name.to_string(),
                option,
            })
        };
        let unsupported = |message: String| RouteError::Unsupported {
            table: table.clone(),
            message,
        };
        let o = &self.options;
        let timestamp = match &o.timestamp_field {
            Some(f) => {
                let c = column(f, "table.field.event.timestamp")?;
                if !c.kind.is_timestamp_source() {
                    return Err(unsupported(format!(
                        "the event timestamp column \"{f}\" (table.field.event.timestamp) must be timestamptz, timestamp or bigint (epoch milliseconds)"
                    )));
                }
                Some(c)
            }
            None => None,
        };
        let schema_version = match (&o.schema_version_field, o.has_envelope()) {
            (Some(f), true) => {
                let c = column(f, "table.field.event.schema.version")?;
                if !c.kind.is_integer() {
                    return Err(unsupported(format!(
                        "the schema version column \"{f}\" (table.field.event.schema.version) must be an integer column"
                    )));
                }
                Some(c)
            }
            _ => None,
        };
        let mut placements = Vec::new();
        for p in &o.placements {
            let Some(c) = find(&p.column) else {
                if o.error_on_missing_placement {
                    return Err(RouteError::MissingColumn {
                        table: table.clone(),
                        column: p.column.clone(),
                        option: "table.fields.additional.placement",
                    });
                }
                continue;
            };
            if p.target == PlacementTarget::Partition && !c.kind.is_integer() {
                return Err(unsupported(format!(
                    "the partition column \"{}\" (table.fields.additional.placement) must be an integer column",
                    p.column
                )));
            }
            placements.push((p.clone(), c));
        }
        let tracing = match &o.tracing_field {
            Some(f) => Some(column(f, "tracing.span.context.field")?),
            None => None,
        };
        let cloudevents = match &o.cloudevents {
            Some(ce) => Some(CloudEventColumns {
                id: column(&ce.id_field, "cloudevents.id.field")?,
                event_type: column(&ce.type_field, "cloudevents.type.field")?,
                subject: match &ce.subject_field {
                    Some(f) => Some(column(f, "cloudevents.subject.field")?),
                    None => None,
                },
            }),
            None => None,
        };
        let layout = TableLayout {
            namespace: relation.namespace.clone(),
            name: relation.name.clone(),
            cloudevents,
            debezium_schema_prefix: schema_prefix,
            id: column(&o.id_field, "table.field.event.id")?,
            key: column(&o.key_field, "table.field.event.key")?,
            payload: column(&o.payload_field, "table.field.event.payload")?,
            route_by: column(&o.route_by_field, "route.by.field")?,
            timestamp,
            schema_version,
            placements,
            tracing,
            table: table.clone(),
        };
        // The converters must be able to carry the key and the value.
        self.converters.key.check(&layout.key.schema).map_err(|e| {
            unsupported(format!(
                "key column \"{}\" with key.converter {}: {e}",
                layout.key.name,
                self.converters.key.class_name()
            ))
        })?;
        let value_schema = if o.has_envelope() {
            let mut fields = vec![Field {
                name: "payload".into(),
                schema: layout.payload.schema.clone(),
            }];
            for (p, c) in &layout.placements {
                if p.target == PlacementTarget::Envelope {
                    fields.push(Field {
                        name: p.alias.clone(),
                        schema: c.schema.clone(),
                    });
                }
            }
            Schema::new(Type::Struct(fields), false)
        } else {
            layout.payload.schema.clone()
        };
        self.converters.value.check(&value_schema).map_err(|e| {
            unsupported(format!(
                "payload column \"{}\" with value.converter {}: {e}",
                layout.payload.name,
                self.converters.value.class_name()
            ))
        })?;
        Ok(layout)
    }
}

#[cfg(test)]
mod tests {
    use crate::router::testing::*;

    #[test]
    fn missing_columns_name_the_option_that_fixes_them() {
        let mut r = Router::new(
            RouterOptions::default(),
            vec![TableName::parse("public.outbox").unwrap()],
        );
        let err = r
            .on_relation(&relation(
                5,
                "public",
                "outbox",
                &[("id", oid::UUID), ("aggregateid", 25), ("payload", 25)],
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aggregatetype") && err.contains("route.by.field"),
            "{err}"
        );
        let table = TableName::parse("public.outbox").unwrap();
        let mut r = Router::new(
            opts(&[("table.fields.additional.placement", "nope:header")]),
            vec![table.clone()],
        );
        let err = r.on_relation(&golden_relation()).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("table.fields.additional.placement"),
            "{err}"
        );
        // With ignore, a missing placed column is left out.
        let mut r = Router::new(
            opts(&[
                (
                    "table.fields.additional.placement",
                    "nope:header,type:header",
                ),
                ("table.field.additional.missing", "ignore"),
            ]),
            vec![table],
        );
        r.on_relation(&golden_relation()).unwrap();
        let rec = &route_all(&mut r)[0].record;
        assert_eq!(rec.headers[1].0, "type");
    }

    #[test]
    fn column_types_the_options_cannot_use_are_refused_up_front() {
        let table = TableName::parse("public.outbox").unwrap();
        for (router, conv, needle) in [
            (
                vec![("table.field.event.timestamp", "type")],
                vec![],
                "timestamptz, timestamp or bigint",
            ),
            (
                vec![("table.fields.additional.placement", "type:partition")],
                vec![],
                "integer",
            ),
            (
                vec![],
                vec![(
                    "key.converter",
                    "org.apache.kafka.connect.converters.ByteArrayConverter",
                )],
                "ByteArrayConverter",
            ),
            (
                vec![],
                vec![("value.converter", BINARY_DATA_CONVERTER)],
                "delegate",
            ),
        ] {
            let mut r =
                Router::new(opts(&router), vec![table.clone()]).with_converters(converters(&conv));
            let err = r.on_relation(&golden_relation()).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        // StringConverter cannot carry bytea.
        let mut r = Router::new(RouterOptions::default(), vec![table])
            .with_converters(converters(&[("value.converter", STRING_CONVERTER)]));
        let err = r
            .on_relation(&relation(
                3,
                "public",
                "outbox",
                &[
                    ("id", oid::UUID),
                    ("aggregatetype", 25),
                    ("aggregateid", 25),
                    ("payload", oid::BYTEA),
                ],
            ))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bytea"), "{err}");
    }
}

//! The shape of each action's context, read from the schema, and the projection of request
//! JSON onto it.
//!
//! Cedar records are closed: a context attribute the schema does not declare is an error,
//! and Cedar has no open maps. Arguments are free JSON (`writ exec` passes an environment map
//! whose keys nobody can declare), so writ keeps, at every record, only the attributes the
//! schema declares, and hands the rest to Cedar, which checks types. A policy that passes
//! strict validation reads declared attributes only, so it loses nothing; the full
//! arguments stay readable as text in `context.args_json`.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

/// How deep common types may nest before the rest is left to Cedar (Cedar refuses cycles;
/// this only bounds the walk).
const MAX_DEPTH: usize = 32;

/// What projection keeps of a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A record: only these attributes are kept, each projected by its own shape.
    Record(BTreeMap<String, Shape>),
    /// A set: each element is projected.
    Set(Box<Shape>),
    /// Anything else (strings, numbers, booleans, entities, extensions): kept as it is, for
    /// Cedar to type-check.
    Leaf,
}

impl Shape {
    /// `value` with, at every record, only the declared attributes. Members that are JSON
    /// `null` count as absent. A value whose JSON kind does not fit the shape is kept as it is,
    /// so that Cedar refuses it.
    pub(crate) fn project(&self, value: Value) -> Value {
        match (self, value) {
            (Shape::Record(attrs), Value::Object(map)) => {
                let kept: Map<String, Value> = map
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .filter_map(|(k, v)| attrs.get(&k).map(|shape| (k, shape.project(v))))
                    .collect();
                Value::Object(kept)
            }
            (Shape::Set(element), Value::Array(items)) => {
                Value::Array(items.into_iter().map(|v| element.project(v)).collect())
            }
            (_, value) => value,
        }
    }
}

/// The context shape of every action declared in the `Writ` namespace, by action id.
#[derive(Debug, Clone, Default)]
pub(crate) struct ContextShapes(HashMap<String, Shape>);

impl ContextShapes {
    /// Reads the shapes from the JSON form of the schema (`SchemaFragment::to_json_value`).
    pub(crate) fn from_schema_json(schema: &Value, namespace: &str) -> Self {
        let resolver = Resolver { schema };
        let mut shapes = HashMap::new();
        if let Some(actions) = schema
            .get(namespace)
            .and_then(|ns| ns.get("actions"))
            .and_then(Value::as_object)
        {
            for (name, action) in actions {
                let shape = match action.get("appliesTo").and_then(|a| a.get("context")) {
                    Some(ty) => resolver.shape(ty, namespace, 0),
                    // No context declared: the context is the empty record.
                    None => Shape::Record(BTreeMap::new()),
                };
                shapes.insert(name.clone(), shape);
            }
        }
        ContextShapes(shapes)
    }

    /// The context shape of the action `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Shape> {
        self.0.get(name)
    }
}

struct Resolver<'a> {
    schema: &'a Value,
}

impl Resolver<'_> {
    fn shape(&self, ty: &Value, namespace: &str, depth: usize) -> Shape {
        if depth > MAX_DEPTH {
            return Shape::Leaf;
        }
        match ty.get("type").and_then(Value::as_str) {
            Some("Record") => {
                let attrs = ty
                    .get("attributes")
                    .and_then(Value::as_object)
                    .map(|attrs| {
                        attrs
                            .iter()
                            .map(|(k, attr)| (k.clone(), self.shape(attr, namespace, depth + 1)))
                            .collect()
                    })
                    .unwrap_or_default();
                Shape::Record(attrs)
            }
            Some("Set") => match ty.get("element") {
                Some(element) => Shape::Set(Box::new(self.shape(element, namespace, depth + 1))),
                None => Shape::Leaf,
            },
            Some("EntityOrCommon") => match ty.get("name").and_then(Value::as_str) {
                Some(name) => self.named(name, namespace, depth),
                None => Shape::Leaf,
            },
            Some("String" | "Long" | "Boolean" | "Entity" | "Extension") | None => Shape::Leaf,
            Some(name) => self.named(name, namespace, depth),
        }
    }

    /// A type named by reference: a common type (resolved) or anything else (a leaf).
    fn named(&self, name: &str, namespace: &str, depth: usize) -> Shape {
        let (candidates, base): (Vec<&str>, &str) = match name.rsplit_once("::") {
            Some(("__cedar", _)) => return Shape::Leaf,
            Some((ns, base)) => (vec![ns], base),
            None => (vec![namespace, ""], name),
        };
        for ns in candidates {
            if let Some(def) = self
                .schema
                .get(ns)
                .and_then(|n| n.get("commonTypes"))
                .and_then(|c| c.get(base))
            {
                return self.shape(def, ns, depth + 1);
            }
        }
        Shape::Leaf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projection_keeps_declared_attributes_and_drops_nulls() {
        let schema = json!({"W": {
            "commonTypes": {"Args": {"type": "Record", "attributes": {
                "argv": {"type": "Set", "element": {"type": "EntityOrCommon", "name": "String"}},
                "inner": {"type": "Inner", "required": false}
            }}, "Inner": {"type": "Record", "attributes": {"n": {"type": "Long"}}}},
            "actions": {"exec": {"appliesTo": {"context": {"type": "Record", "attributes": {
                "args": {"type": "EntityOrCommon", "name": "Args"},
                "purpose": {"type": "String", "required": false}
            }}}}, "bare": {}}
        }});
        let shapes = ContextShapes::from_schema_json(&schema, "W");
        let shape = shapes.get("exec").unwrap();
        let got = shape.project(json!({
            "args": {"argv": ["a", "b"], "env": {"X": "1"}, "inner": {"n": 1, "m": 2}},
            "purpose": null,
            "extra": 1
        }));
        assert_eq!(
            got,
            json!({"args": {"argv": ["a", "b"], "inner": {"n": 1}}})
        );
        assert_eq!(
            shapes.get("bare").unwrap().project(json!({"a": 1})),
            json!({})
        );
        // A kind that does not fit is left for Cedar to refuse.
        assert_eq!(shape.project(json!({"args": "x"})), json!({"args": "x"}));
    }
}

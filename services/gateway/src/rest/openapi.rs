//! The OpenAPI 3 document of the REST API, built from [`ROUTES`] and, for the bodies,
//! from the API's own descriptors by the proto3 JSON mapping (as [`super::json`] reads and
//! writes them), so neither the routes nor the messages can differ from what is served.

use super::{Body, ROUTES, Reply, RestState, json::POOL};
use axum::{Json, extract::State};
use prost_reflect::{Cardinality, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};
use std::{collections::BTreeMap, sync::Arc};

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The schema of one value of `kind`; messages are collected into `todo`.
fn kind_schema(kind: &Kind, todo: &mut Vec<MessageDescriptor>) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "minimum": i32::MIN, "maximum": i32::MAX})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "minimum": 0, "maximum": u32::MAX}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            json!({"type": "string", "pattern": "^-?[0-9]{1,19}$", "description": "A 64-bit integer, as a string."})
        }
        Kind::Uint64 | Kind::Fixed64 => {
            json!({"type": "string", "pattern": "^[0-9]{1,20}$", "description": "A 64-bit integer, as a string."})
        }
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(e) => {
            json!({"type": "string", "enum": e.values().map(|v| v.name().to_string()).collect::<Vec<_>>()})
        }
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
            "google.protobuf.Duration" => {
                json!({"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,9})?s$", "description": "Seconds, e.g. `600s`."})
            }
            name => {
                todo.push(m.clone());
                reference(name)
            }
        },
    }
}

fn field_schema(field: &FieldDescriptor, todo: &mut Vec<MessageDescriptor>) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            unreachable!("a map field is a message of entries")
        };
        let value = entry.map_entry_value_field();
        return json!({"type": "object", "additionalProperties": kind_schema(&value.kind(), todo)});
    }
    let one = kind_schema(&field.kind(), todo);
    if field.cardinality() == Cardinality::Repeated {
        json!({"type": "array", "items": one})
    } else {
        one
    }
}

fn message_schema(message: &MessageDescriptor, todo: &mut Vec<MessageDescriptor>) -> Value {
    let mut properties = Map::new();
    for field in message.fields() {
        properties.insert(field.name().to_string(), field_schema(&field, todo));
    }
    json!({"type": "object", "properties": properties, "additionalProperties": false})
}

/// The schemas of `roots` and of every message they reach.
fn schemas(roots: &[&str]) -> Map<String, Value> {
    let mut todo: Vec<MessageDescriptor> = roots
        .iter()
        .map(|name| {
            POOL.get_message_by_name(name)
                .unwrap_or_else(|| panic!("{name} is a message of the API"))
        })
        .collect();
    let mut done = BTreeMap::new();
    while let Some(message) = todo.pop() {
        if done.contains_key(message.full_name()) {
            continue;
        }
        let schema = message_schema(&message, &mut todo);
        done.insert(message.full_name().to_string(), schema);
    }
    done.into_iter().collect()
}

const ERROR: &str = "Error";

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "status", "message"],
            "properties": {
                "code": {"type": "integer", "description": "The HTTP status."},
                "status": {"type": "string", "description": "The gRPC code's name, e.g. INVALID_ARGUMENT."},
                "message": {"type": "string", "description": "What went wrong; names the field and the limit."},
                "field": {"type": "string", "description": "The field a validation error names, e.g. spec.title."}
            }
        }}
    })
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn operation(route: &super::Route, roots: &mut Vec<&'static str>) -> Value {
    let mut op = Map::new();
    op.insert("operationId".into(), route.operation_id.into());
    op.insert("summary".into(), route.summary.into());
    let params: Vec<Value> = route
        .params
        .iter()
        .map(|p| {
            let mut param = json!({
                "name": p.name, "in": p.location, "description": p.description,
                "required": p.location == "path", "schema": (p.schema)(),
            });
            if p.location == "query" && (p.schema)()["type"] == "array" {
                param["style"] = "form".into();
                param["explode"] = true.into();
            }
            param
        })
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), params.into());
    }
    match route.body {
        Body::None => {}
        Body::Message(name) => {
            roots.push(name);
            op.insert(
                "requestBody".into(),
                json!({"required": false, "content": json_content(reference(name))}),
            );
        }
        Body::Session => {
            let schema = json!({"type": "object", "required": ["api_key"], "additionalProperties": false,
                                "properties": {"api_key": {"type": "string"}}});
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": json_content(schema)}),
            );
        }
    }
    let mut responses = Map::new();
    match route.reply {
        Reply::Message(status, name) => {
            roots.push(name);
            responses.insert(
                status.to_string(),
                json!({"description": "OK", "content": json_content(reference(name))}),
            );
        }
        Reply::Created(name) => {
            roots.push(name);
            responses.insert(
                "201".into(),
                json!({"description": "A new job.", "content": json_content(reference(name))}),
            );
            responses.insert(
                "200".into(),
                json!({"description": "The earlier job of the idempotency key.", "content": json_content(reference(name))}),
            );
        }
        Reply::Events(name) => {
            roots.push(name);
            responses.insert(
                "200".into(),
                json!({"description": format!("Server-sent events; each `data` is a {name} as JSON, an `error` event carries an Error."),
                       "content": {"text/event-stream": {"schema": {"type": "string"}}}}),
            );
        }
        Reply::Bytes => {
            let bytes = json!({"*/*": {"schema": {"type": "string", "format": "binary"}}});
            responses.insert(
                "200".into(),
                json!({"description": "The whole artifact.", "content": bytes}),
            );
            responses.insert(
                "206".into(),
                json!({"description": "The range asked for.", "content": bytes}),
            );
        }
        Reply::NoContent => {
            responses.insert("204".into(), json!({"description": "Done."}));
        }
        Reply::Asset(content_type) => {
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": {content_type: {"schema": {"type": "string"}}}}),
            );
        }
        Reply::OpenApi => {
            responses.insert(
                "200".into(),
                json!({"description": "OK", "content": json_content(json!({"type": "object"}))}),
            );
        }
    }
    if route.auth || !matches!(route.body, Body::None) || !route.params.is_empty() {
        responses.insert(
            "default".into(),
            json!({"description": "An error.", "content": json_content(reference(ERROR))}),
        );
    }
    op.insert("responses".into(), responses.into());
    if route.auth {
        op.insert("security".into(), json!([{"bearer": []}, {"session": []}]));
    } else {
        op.insert("security".into(), json!([]));
    }
    op.into()
}

/// The document.
pub fn document() -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut roots = Vec::new();
    for route in ROUTES {
        let op = operation(route, &mut roots);
        paths
            .entry(route.path)
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), op);
    }
    let mut components = schemas(&roots);
    components.insert(ERROR.into(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "storyreel gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A title in, a narrated, subtitled MP4 out. The REST mirror of \
                storyreel.gateway.v1.GatewayService: bodies are the proto messages in the proto3 JSON \
                mapping with the proto's field names. Authenticate with `Authorization: Bearer <API key>`, \
                or in a browser with the session cookie set by POST /v1/session."
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::auth::COOKIE}
            },
            "schemas": components
        },
        "paths": paths,
    })
}

pub async fn serve(State(_): State<Arc<RestState>>) -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_has_every_route_once_and_every_schema_it_refers_to() {
        let document = document();
        let text = document.to_string();
        let operations: usize = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|ops| ops.as_object().unwrap().len())
            .sum();
        assert_eq!(operations, ROUTES.len());
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for (at, _) in text.match_indices("#/components/schemas/") {
            let name: String = text[at + 21..].chars().take_while(|c| *c != '"').collect();
            assert!(
                schemas.contains_key(&name),
                "{name} is referred to but not defined"
            );
        }
        let spec = &schemas["storyreel.gateway.v1.VideoSpec"]["properties"];
        assert_eq!(spec["n_scenes"]["maximum"], u32::MAX);
        assert_eq!(spec["seed"]["type"], "string");
        assert_eq!(spec["resolution"]["enum"][1], "RESOLUTION_256");
        let job = &schemas["storyreel.gateway.v1.Job"]["properties"];
        assert_eq!(job["create_time"]["format"], "date-time");
        assert_eq!(job["labels"]["additionalProperties"]["type"], "string");
    }
}

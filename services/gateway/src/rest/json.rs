//! Messages as JSON by the proto3 JSON mapping, through the descriptor set the API is
//! built from (so the REST mirror cannot drift from the proto): field names as in the
//! proto (`n_scenes`), enums by name, 64-bit integers as strings, timestamps in RFC 3339,
//! bytes in base64, default values left out. Unknown fields are refused.

use prost::Message;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, MessageDescriptor, SerializeOptions,
};
use std::sync::LazyLock;
use storyreel_runtime::ValidationError;

/// Every message of the storyreel API, with the well-known types it imports.
pub static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(storyreel_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built with the API decodes")
});

/// The descriptor of `M`.
pub fn descriptor<M: prost::Name>() -> MessageDescriptor {
    POOL.get_message_by_name(&M::full_name())
        .unwrap_or_else(|| panic!("{} is in the descriptor set", M::full_name()))
}

/// `message` as JSON.
pub fn to_json<M: Message + prost::Name>(message: &M) -> serde_json::Value {
    let dynamic = DynamicMessage::decode(descriptor::<M>(), message.encode_to_vec().as_slice())
        .expect("a message decodes with its own descriptor");
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .skip_default_fields(true);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .expect("a message serializes to a JSON value")
}

/// A request body as `M`; an empty body is `{}`.
pub fn from_json<M: Message + prost::Name + Default>(body: &[u8]) -> Result<M, ValidationError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    let invalid =
        |e: &dyn std::fmt::Display| ValidationError::new("body", format!("must be a JSON {}: {e}", M::NAME));
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let dynamic = DynamicMessage::deserialize_with_options(
        descriptor::<M>(),
        &mut deserializer,
        &DeserializeOptions::new(),
    )
    .map_err(|e| invalid(&e))?;
    deserializer.end().map_err(|e| invalid(&e))?;
    M::decode(dynamic.encode_to_vec().as_slice()).map_err(|e| invalid(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use storyreel_proto::gateway::{CreateVideoRequest, Job, JobState};

    #[test]
    fn a_request_reads_by_proto_names_and_refuses_unknown_fields() {
        let body = br#"{"spec": {"title": "A lighthouse", "n_scenes": 2, "resolution": "RESOLUTION_256", "seed": "42"},
                        "labels": {"team": "ml"}, "timeout": "600s"}"#;
        let request: CreateVideoRequest = from_json(body).unwrap();
        let spec = request.spec.unwrap();
        assert_eq!(
            (spec.title.as_str(), spec.n_scenes, spec.seed),
            ("A lighthouse", Some(2), Some(42))
        );
        assert_eq!(request.timeout.unwrap().seconds, 600);
        let error = from_json::<CreateVideoRequest>(br#"{"spec": {"titel": "x"}}"#).unwrap_err();
        assert_eq!(error.field, "body");
        assert!(error.message.contains("titel"), "{}", error.message);
        assert!(from_json::<CreateVideoRequest>(b"{").is_err());
        assert!(from_json::<CreateVideoRequest>(b" ").unwrap().spec.is_none());
    }

    #[test]
    fn a_message_writes_enums_by_name_and_leaves_defaults_out() {
        let job = Job {
            id: "job-1".into(),
            state: JobState::Running as i32,
            ..Default::default()
        };
        let json = to_json(&job);
        assert_eq!(
            json,
            serde_json::json!({"id": "job-1", "state": "JOB_STATE_RUNNING"})
        );
    }
}

//! Unit tests for static path decoding.

use super::{BadPath, request_segments};

#[test]
fn request_paths_decode_to_segments_or_are_refused() {
    for (path, expected) in [
        ("/", Ok(vec![])),
        ("/index.html", Ok(vec!["index.html"])),
        ("//assets///app.css", Ok(vec!["assets", "app.css"])),
        ("/docs/", Ok(vec!["docs"])),
        ("/with%20space.txt", Ok(vec!["with space.txt"])),
        ("/caf%C3%A9", Ok(vec!["café"])),
        ("/..%2e", Ok(vec!["..."])),
        ("/../secret", Err(BadPath::Traversal)),
        ("/a/../../secret", Err(BadPath::Traversal)),
        ("/./index.html", Err(BadPath::Traversal)),
        ("/%2e%2e/secret", Err(BadPath::Traversal)),
        ("/%2E%2E/secret", Err(BadPath::Traversal)),
        ("/.%2e/secret", Err(BadPath::Traversal)),
        ("/%2e%2e%2fsecret", Err(BadPath::Malformed)),
        ("/a%5c..%5csecret", Err(BadPath::Malformed)),
        ("/nul%00", Err(BadPath::Malformed)),
        ("/bad%ff", Err(BadPath::Malformed)),
    ] {
        let expected = expected.map(|segments| segments.into_iter().map(str::to_owned).collect::<Vec<_>>());
        assert_eq!(request_segments(path), expected, "{path:?}");
    }
}

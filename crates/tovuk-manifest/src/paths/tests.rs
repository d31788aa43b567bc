//! Tests for project-relative and URL path rules.

use super::{check_relative_path, check_url_path, normalize_route_path};

#[test]
fn relative_paths_stay_inside_the_project() {
    for good in ["target", "dist/", "fixtures/big", "**/*.log", ".", "a/b/c.txt"] {
        assert_eq!(check_relative_path(good), Ok(()), "{good}");
    }
    for bad in ["", " ", "/etc", "~/x", "C:/x", "a\\b", "..", "a/../b", "../x"] {
        assert!(check_relative_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn url_paths_start_with_a_slash_and_have_no_query() {
    for good in ["/", "/health", "/api/v1"] {
        assert_eq!(check_url_path(good), Ok(()), "{good}");
    }
    for bad in ["", "health", "/a b", "/x?y=1", "/x#top"] {
        assert!(check_url_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn route_paths_ignore_trailing_slashes() {
    assert_eq!(normalize_route_path("/api/"), "/api");
    assert_eq!(normalize_route_path("/api"), "/api");
    assert_eq!(normalize_route_path("/"), "/");
    assert_eq!(normalize_route_path("//"), "/");
}

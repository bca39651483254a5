{#- An image model's golden cases, each with its file's bytes; imported by the golden
    tests of the image classifier and the detector (which define `workspace()` and
    `variant`), with the test that the files Python cannot open are refused by `method`. -#}
{% macro golden_cases() %}
fn golden_cases() -> Vec<(serde_json::Value, Vec<u8>)> {
    let reference = std::fs::read_to_string(workspace().join("golden/{{ model.name }}/reference.json"))
        .expect("golden/{{ model.name }}/reference.json is written by `cargo xtask golden`");
    let reference: serde_json::Value = serde_json::from_str(&reference).expect("reference.json is JSON");
    let cases = reference["cases"].as_array().expect("reference.json has cases").clone();
    assert!(!cases.is_empty());
    cases
        .into_iter()
        .map(|case| {
            let file = workspace().join("golden/{{ model.name }}").join(case["file"].as_str().expect("a case names its file"));
            let bytes = std::fs::read(&file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            (case, bytes)
        })
        .collect()
}
{% endmacro %}

{% macro refused(method) %}
#[test]
fn images_python_cannot_open_are_refused_with_an_image_error() {
    let model = variant("fp32");
    let mut refused = 0;
    for (case, bytes) in golden_cases() {
        if case.get("error").is_none() {
            continue;
        }
        match model.{{ method }}(&[&bytes]) {
            Err(Error::Image(_)) => refused += 1,
            other => panic!("case {}: expected an image error, got {:?}", case["id"], other.map(|p| p.len())),
        }
    }
    assert!(refused > 0, "the golden set has undecodable files");
}
{% endmacro %}

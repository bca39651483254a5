{#- What every generated crate's golden test shares: where the artifacts are, loading a
    named variant, and the tests that every made variant loads through the crate and that
    `load` takes the selected one. Included by each task's golden test, which imports
    `Model`, `load`, `load_with`, `LoadOptions`, `VariantChoice`, `Variants` and `Serving`. -#}
fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn onnx_dir() -> PathBuf {
    let artifacts = std::env::var_os("MODELCRATE_ARTIFACTS").map_or_else(|| workspace().join("artifacts"), PathBuf::from);
    artifacts.join("{{ model.name }}/onnx")
}

fn variant(name: &str) -> Model {
    let options = LoadOptions::one_session(VariantChoice::Named(name.into()));
    load_with(&onnx_dir(), &options).unwrap_or_else(|error| panic!("variant {name} loads: {error}"))
}

#[test]
fn every_made_variant_loads_through_this_crate() {
    let variants = read_variants(&onnx_dir()).expect("variants.json is readable").expect("variants.json (cargo xtask optimize)");
    for made in variants.made() {
        let loaded = variant(&made.name).info().variant.clone();
        assert_eq!((loaded.name.as_str(), Some(loaded.file.as_str())), (made.name.as_str(), made.file.as_deref()));
    }
}

#[test]
fn load_serves_the_selected_variant() {
    let serving = read_serving(&onnx_dir()).expect("serving.json is readable").expect("serving.json (cargo xtask select)");
    let model = load(&onnx_dir()).expect("the serving variant loads");
    assert_eq!(model.info().variant.name, serving.variant);
}

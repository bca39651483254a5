{#- The label enum's round trips; included by the golden test of every task with labels. -#}
#[test]
fn labels_round_trip_through_strings_and_ids() {
    for label in Label::ALL {
        assert_eq!(label.to_string().parse::<Label>().ok(), Some(label));
        assert_eq!(Label::from_id(label.id()), Some(label));
    }
    for label in Label::ALL {
        let json = serde_json::to_value(label).expect("a label serializes");
        assert_eq!(json, serde_json::Value::from(label.as_str()), "serde uses the label string");
        assert_eq!(serde_json::from_value::<Label>(json).ok(), Some(label));
    }
    assert!("not-a-label".parse::<Label>().is_err());
    assert_eq!(Label::from_id(Label::ALL.len()), None);
}

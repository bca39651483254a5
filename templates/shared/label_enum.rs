{#- The model's labels as an enum: ids, names, parsing, serde as the label string, and
    the runtime's `Labels` trait, by which the runtime's label ids become variants.
    Included by the lib.rs of every task whose model has `config.json` labels. -#}
/// The model's labels, in `config.json` id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub enum Label {
    {% for label in model.labels %}/// `{{ label.label }}` (id {{ label.id }})
    #[serde(rename = "{{ label.label }}")]
    {{ label.variant }} = {{ label.id }},
    {% endfor %}
}

impl Label {
    /// Every label, in id order.
    pub const ALL: [Label; LABEL_COUNT] = [{% for label in model.labels %}Label::{{ label.variant }}, {% endfor %}];
    /// Label strings in id order, as `config.json`'s `id2label` has them.
    pub const NAMES: [&str; LABEL_COUNT] = [{% for label in model.labels %}"{{ label.label }}", {% endfor %}];

    /// The id in `config.json`, which is also the logit's column.
    pub const fn id(self) -> usize {
        self as usize
    }

    pub fn from_id(id: usize) -> Option<Self> {
        Self::ALL.get(id).copied()
    }

    pub const fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl modelcrate_runtime::Labels for Label {
    const NAMES: &'static [&'static str] = &Label::NAMES;

    fn from_id(id: usize) -> Option<Self> {
        Label::from_id(id)
    }

    fn id(self) -> usize {
        Label::id(self)
    }
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Label {
    type Err = modelcrate_runtime::labels::UnknownLabel;

    /// A label string (a user's, or a reference file's), as `config.json` spells it.
    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        modelcrate_runtime::labels::parse_label(text, &Self::NAMES).map(|id| Self::ALL[id])
    }
}

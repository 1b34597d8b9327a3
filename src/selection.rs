//! Which topics an operation covers: `--include` / `--exclude` regular expressions (each
//! matched against the whole topic name) and whether Kafka's internal topics count.

use regex::Regex;

use crate::Error;

#[derive(Debug, Clone, Default)]
pub struct TopicSelection {
    include: Vec<Regex>,
    exclude: Vec<Regex>,
    include_internal: bool,
}

impl TopicSelection {
    pub fn new(
        include: &[String],
        exclude: &[String],
        include_internal: bool,
    ) -> Result<Self, Error> {
        let compile = |pattern: &String| {
            Regex::new(&format!("^(?:{pattern})$")).map_err(|anchored| Error::BadPattern {
                pattern: pattern.clone(),
                // Reported on the text as written, not on the anchored form.
                problem: Regex::new(pattern).err().unwrap_or(anchored).to_string(),
            })
        };
        Ok(TopicSelection {
            include: include.iter().map(compile).collect::<Result<_, _>>()?,
            exclude: exclude.iter().map(compile).collect::<Result<_, _>>()?,
            include_internal,
        })
    }

    /// True if `topic` is selected. Internal topics (`__` prefix) need `include_internal`.
    pub fn matches(&self, topic: &str, internal: bool) -> bool {
        (!internal || self.include_internal)
            && (self.include.is_empty() || self.include.iter().any(|re| re.is_match(topic)))
            && !self.exclude.iter().any(|re| re.is_match(topic))
    }

    /// The selection as the user wrote it, for messages.
    pub fn describe(&self) -> String {
        let strip = |re: &Regex| re.as_str()[4..re.as_str().len() - 2].to_string();
        let mut parts = Vec::new();
        parts.extend(
            self.include
                .iter()
                .map(|re| format!("--include {}", strip(re))),
        );
        parts.extend(
            self.exclude
                .iter()
                .map(|re| format!("--exclude {}", strip(re))),
        );
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_names() {
        let selection =
            TopicSelection::new(&["order\\..*".into()], &[".*\\.dlq".into()], false).unwrap();
        assert!(selection.matches("order.created", false));
        assert!(!selection.matches("xorder.created", false));
        assert!(!selection.matches("order.created.dlq", false));
        assert_eq!(
            selection.describe(),
            "--include order\\..* --exclude .*\\.dlq"
        );
    }

    #[test]
    fn internal_topics_need_opting_in() {
        assert!(!TopicSelection::new(&[], &[], false)
            .unwrap()
            .matches("__consumer_offsets", true));
        assert!(TopicSelection::new(&[], &[], true)
            .unwrap()
            .matches("__consumer_offsets", true));
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let err = TopicSelection::new(&["(".into()], &[], false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"(\""), "{err}");
    }
}

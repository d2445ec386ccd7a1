//! Routing: which channels an alert of a given severity is sent to.

use std::collections::BTreeSet;

use super::{AlertConfigError, AlertingConfig, Severity};

/// Checks that channel names are unique and that routes only name existing channels.
pub fn validate(config: &AlertingConfig) -> Result<(), AlertConfigError> {
    let mut names = BTreeSet::new();
    for channel in &config.channels {
        if !names.insert(channel.name.as_str()) {
            return Err(AlertConfigError::DuplicateChannel(channel.name.clone()));
        }
    }
    for (i, route) in config.routes.iter().enumerate() {
        if let Some(missing) = route.channels.iter().find(|c| !names.contains(c.as_str())) {
            return Err(AlertConfigError::UnknownChannel {
                route: i,
                channel: missing.clone(),
            });
        }
    }
    Ok(())
}

/// Names of the channels an alert of `severity` goes to, each once, in the order the channels
/// are declared. With no routes every channel receives every alert; with routes, a channel
/// receives the alert when any route matching the severity names it (a route with no
/// severities matches all). Names of unknown channels are ignored.
pub fn channels_for(config: &AlertingConfig, severity: Severity) -> Vec<&str> {
    if config.routes.is_empty() {
        return config.channels.iter().map(|c| c.name.as_str()).collect();
    }
    let wanted: BTreeSet<&str> = config
        .routes
        .iter()
        .filter(|r| r.severities.is_empty() || r.severities.contains(&severity))
        .flat_map(|r| r.channels.iter().map(String::as_str))
        .collect();
    config
        .channels
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| wanted.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{Channel, Route, SinkConfig, WebhookConfig};

    fn channel(name: &str) -> Channel {
        Channel {
            name: name.into(),
            sink: SinkConfig::Webhook(WebhookConfig {
                url: "http://127.0.0.1:1/".into(),
                hmac_secret: None,
                headers: vec![],
            }),
        }
    }

    fn config(routes: Vec<Route>) -> AlertingConfig {
        AlertingConfig {
            channels: vec![channel("pager"), channel("chat"), channel("mail")],
            routes,
            ..AlertingConfig::default()
        }
    }

    #[test]
    fn no_routes_means_every_channel() {
        let config = config(vec![]);
        assert_eq!(
            channels_for(&config, Severity::P3),
            vec!["pager", "chat", "mail"]
        );
    }

    #[test]
    fn routes_select_by_severity_and_merge() {
        let config = config(vec![
            Route {
                severities: vec![Severity::P0],
                channels: vec!["pager".into(), "chat".into()],
            },
            Route {
                severities: vec![Severity::P1, Severity::P2],
                channels: vec!["chat".into()],
            },
            Route {
                severities: vec![],
                channels: vec!["mail".into()],
            },
        ]);
        assert_eq!(
            channels_for(&config, Severity::P0),
            vec!["pager", "chat", "mail"]
        );
        assert_eq!(channels_for(&config, Severity::P2), vec!["chat", "mail"]);
        assert_eq!(channels_for(&config, Severity::P3), vec!["mail"]);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut bad = config(vec![Route {
            severities: vec![],
            channels: vec!["nope".into()],
        }]);
        assert_eq!(
            validate(&bad),
            Err(AlertConfigError::UnknownChannel {
                route: 0,
                channel: "nope".into()
            })
        );
        bad.routes.clear();
        bad.channels.push(channel("chat"));
        assert_eq!(
            validate(&bad),
            Err(AlertConfigError::DuplicateChannel("chat".into()))
        );
        assert_eq!(validate(&config(vec![])), Ok(()));
    }
}

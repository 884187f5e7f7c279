//! The e-mails' words: minijinja templates in files (`crates/notifier/templates/<locale>/`),
//! built into the binary, each kind of message as `<kind>.txt` (block `subject` on the first
//! line, then block `body`)
//! and `<kind>.html` (HTML-escaped, extending `layout.html`). A directory given with
//! `MARQUEE_TEMPLATE_DIR` replaces any of them file by file, and may add locales.
//!
//! A message is written in the recipient's locale when a translation exists: `de-AT` tries
//! `de-AT`, then `de`, then [`FALLBACK_LOCALE`].

use std::path::Path;

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde::Serialize;

use crate::NotifierError;

/// The locale every message exists in.
pub const FALLBACK_LOCALE: &str = "en";

/// Every kind of e-mail the notifier sends.
pub const KINDS: &[&str] = &[
    "registration_confirmed",
    "hold_expiring",
    "waitlist_offer",
    "registration_cancelled",
    "refund_completed",
    "event_rescheduled",
    "event_cancelled",
    "reminder",
];

macro_rules! embedded {
    ($($locale:literal => [$($kind:literal),*]),*) => {
        &[$($(
            (concat!($locale, "/", $kind, ".txt"), include_str!(concat!("../templates/", $locale, "/", $kind, ".txt"))),
            (concat!($locale, "/", $kind, ".html"), include_str!(concat!("../templates/", $locale, "/", $kind, ".html"))),
        )*)*]
    };
}

/// The templates built into the binary, by name.
const EMBEDDED: &[(&str, &str)] = embedded!(
    "en" => ["registration_confirmed", "hold_expiring", "waitlist_offer", "registration_cancelled",
             "refund_completed", "event_rescheduled", "event_cancelled", "reminder"],
    "de" => ["registration_confirmed", "hold_expiring", "waitlist_offer", "registration_cancelled",
             "refund_completed", "event_rescheduled", "event_cancelled", "reminder"]
);

/// One message, written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Rendered {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body.
    pub html: String,
    /// The locale it is written in.
    pub locale: String,
}

/// The loaded templates.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates.
    pub fn embedded() -> Result<Self, NotifierError> {
        Self::load(None)
    }

    /// The built-in templates, each replaced by the file of the same name under `dir`
    /// (`layout.html`, `<locale>/<kind>.txt`, `<locale>/<kind>.html`) where one exists; a
    /// locale directory there may add a translation.
    pub fn load(dir: Option<&Path>) -> Result<Self, NotifierError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        let bad = |name: &str, e: minijinja::Error| {
            NotifierError::Config(format!("template {name}: {e:#}"))
        };
        env.add_template("layout.html", include_str!("../templates/layout.html"))
            .map_err(|e| bad("layout.html", e))?;
        for (name, source) in EMBEDDED {
            env.add_template(name, source).map_err(|e| bad(name, e))?;
        }
        if let Some(dir) = dir {
            let mut names: Vec<String> = vec!["layout.html".to_owned()];
            let locales = std::fs::read_dir(dir)
                .map_err(|e| NotifierError::Config(format!("{}: {e}", dir.display())))?;
            for locale in locales.flatten() {
                if !locale.path().is_dir() {
                    continue;
                }
                let locale = locale.file_name().to_string_lossy().into_owned();
                for kind in KINDS {
                    names.push(format!("{locale}/{kind}.txt"));
                    names.push(format!("{locale}/{kind}.html"));
                }
            }
            for name in names {
                let path = dir.join(&name);
                if let Ok(source) = std::fs::read_to_string(&path) {
                    env.add_template_owned(name.clone(), source)
                        .map_err(|e| bad(&name, e))?;
                }
            }
        }
        Ok(Self { env })
    }

    /// The locale a message of `kind` for someone preferring `wanted` is written in.
    pub fn locale_for(&self, kind: &str, wanted: &str) -> String {
        let language = wanted.split('-').next().unwrap_or(wanted);
        [wanted, language, FALLBACK_LOCALE]
            .into_iter()
            .find(|locale| {
                self.env
                    .get_template(&format!("{locale}/{kind}.txt"))
                    .is_ok()
            })
            .unwrap_or(FALLBACK_LOCALE)
            .to_owned()
    }

    /// Writes a message of `kind` in (the best available match of) `locale` from `context`
    /// (which gets `locale` and `subject` added for the layout).
    pub fn render(
        &self,
        kind: &str,
        locale: &str,
        context: &serde_json::Value,
    ) -> Result<Rendered, NotifierError> {
        let locale = self.locale_for(kind, locale);
        let failed = |e: minijinja::Error| NotifierError::Template(format!("{kind}: {e:#}"));
        let mut context = context.clone();
        if let serde_json::Value::Object(map) = &mut context {
            map.insert("locale".to_owned(), locale.clone().into());
        }
        let text = self
            .env
            .get_template(&format!("{locale}/{kind}.txt"))
            .map_err(failed)?;
        // The `subject` block comes first, on the first line; the `body` block is the rest.
        let whole = text.render(&context).map_err(failed)?;
        let (subject, body) = whole.split_once('\n').unwrap_or((&whole, ""));
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        if let serde_json::Value::Object(map) = &mut context {
            map.insert("subject".to_owned(), subject.clone().into());
        }
        let html = self
            .env
            .get_template(&format!("{locale}/{kind}.html"))
            .map_err(failed)?
            .render(&context)
            .map_err(failed)?;
        Ok(Rendered {
            subject,
            text: body.trim_start().to_owned(),
            html,
            locale,
        })
    }
}

/// `at` in the event's time zone `timezone` (UTC when unknown), the way `locale` writes it,
/// with the zone's name.
pub fn format_time(at: DateTime<Utc>, timezone: &str, locale: &str) -> String {
    let zone: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    let local = at.with_timezone(&zone);
    let name = zone.name();
    if locale.starts_with("de") {
        format!("{} Uhr ({name})", local.format("%d.%m.%Y, %H:%M"))
    } else {
        format!("{} ({name})", local.format("%a %-d %b %Y, %H:%M"))
    }
}

/// An amount of money the way `locale` writes it, e.g. `EUR 25.00` or `25,00 EUR`.
pub fn format_money(amount_minor: i64, currency: &str, locale: &str) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let (units, cents) = (amount_minor.abs() / 100, amount_minor.abs() % 100);
    if locale.starts_with("de") {
        format!("{sign}{units},{cents:02} {currency}")
    } else {
        format!("{currency} {sign}{units}.{cents:02}")
    }
}

/// How long before the start a reminder goes out, in words, e.g. `24 hours` or `1 Stunde`.
pub fn format_lead(seconds: u32, locale: &str) -> String {
    let de = locale.starts_with("de");
    let (n, unit_en, unit_de) = if seconds.is_multiple_of(86_400) && seconds >= 86_400 * 2 {
        (seconds / 86_400, ("day", "days"), ("Tag", "Tagen"))
    } else if seconds.is_multiple_of(3_600) {
        (seconds / 3_600, ("hour", "hours"), ("Stunde", "Stunden"))
    } else if seconds.is_multiple_of(60) {
        (seconds / 60, ("minute", "minutes"), ("Minute", "Minuten"))
    } else {
        (seconds, ("second", "seconds"), ("Sekunde", "Sekunden"))
    };
    let unit = match (de, n == 1) {
        (false, true) => unit_en.0,
        (false, false) => unit_en.1,
        (true, true) => unit_de.0,
        (true, false) => unit_de.1,
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn context() -> serde_json::Value {
        json!({
            "name": "Ada <script>",
            "event": { "title": "RustConf", "starts": "Sat 1 Jun 2030, 14:00 (Europe/Berlin)",
                       "venue": "Hall A", "city": "Berlin" },
            "quantity": 2, "ticket_type": "Standard",
            "ticket_codes": ["code-1", "code-2"],
        })
    }

    #[test]
    fn every_kind_exists_in_english_and_german() {
        let templates = Templates::embedded().expect("templates");
        for kind in KINDS {
            for locale in ["en", "de"] {
                let rendered = templates
                    .render(kind, locale, &context())
                    .unwrap_or_else(|e| panic!("{kind} {locale}: {e}"));
                assert_eq!(rendered.locale, locale);
                assert!(
                    rendered.subject.contains("RustConf"),
                    "{kind}: {rendered:?}"
                );
                assert!(!rendered.subject.contains('\n'));
                assert!(rendered.html.contains("<html lang=\"") && rendered.html.contains(locale));
            }
        }
    }

    #[test]
    fn an_unknown_locale_falls_back_to_its_language_then_english() {
        let templates = Templates::embedded().expect("templates");
        assert_eq!(templates.locale_for("reminder", "de-AT"), "de");
        assert_eq!(templates.locale_for("reminder", "fr"), "en");
        let rendered = templates
            .render("registration_confirmed", "de-CH", &context())
            .expect("rendered");
        assert!(
            rendered.subject.starts_with("Deine Tickets"),
            "{rendered:?}"
        );
        assert!(rendered.text.contains("code-2"));
    }

    #[test]
    fn html_escapes_what_attendees_typed_and_text_keeps_it() {
        let templates = Templates::embedded().expect("templates");
        let rendered = templates
            .render("registration_confirmed", "en", &context())
            .expect("rendered");
        assert!(
            rendered.html.contains("Ada &lt;script&gt;"),
            "{}",
            rendered.html
        );
        assert!(
            rendered.text.contains("Hello Ada <script>,"),
            "{}",
            rendered.text
        );
    }

    #[test]
    fn times_money_and_leads_are_written_per_locale() {
        let at = DateTime::parse_from_rfc3339("2030-06-01T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            format_time(at, "Europe/Berlin", "en"),
            "Sat 1 Jun 2030, 14:00 (Europe/Berlin)"
        );
        assert_eq!(
            format_time(at, "Europe/Berlin", "de"),
            "01.06.2030, 14:00 Uhr (Europe/Berlin)"
        );
        assert_eq!(
            format_time(at, "Nowhere/Else", "en"),
            "Sat 1 Jun 2030, 12:00 (UTC)"
        );
        assert_eq!(format_money(2_500, "EUR", "en"), "EUR 25.00");
        assert_eq!(format_money(2_505, "EUR", "de"), "25,05 EUR");
        assert_eq!(format_lead(86_400, "en"), "24 hours");
        assert_eq!(format_lead(3_600, "de"), "1 Stunde");
        assert_eq!(format_lead(2, "en"), "2 seconds");
        assert_eq!(format_lead(172_800, "de"), "2 Tagen");
    }
}

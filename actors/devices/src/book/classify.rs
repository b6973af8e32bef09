//! Templates and classification in the device book: the catalogue, hand assignments and
//! criticality, and the classifier run once per save for what changed.

use super::DeviceBook;
use crate::device::Device;
use crate::templates::{self, Fit, Template};

impl DeviceBook {
    /// Every template: the built-in ones, then custom ones by id.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// A template by id.
    pub fn template(&self, id: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.id == id)
    }

    /// Adds or replaces a custom template (built-in ones cannot be replaced) and classifies
    /// every device again at the next save.
    pub fn put_template(&mut self, t: Template) -> Result<(), String> {
        t.validate()?;
        match self.templates.iter_mut().find(|x| x.id == t.id) {
            Some(x) if x.built_in => return Err(format!("{} is built in: clone it", t.id)),
            Some(x) => *x = t,
            None => self.templates.push(t),
        }
        self.templates_changed = true;
        self.dirty.extend(self.devices.keys().cloned());
        Ok(())
    }

    /// Every template's fit for a device, best first.
    pub fn fits(&self, id: &str) -> Option<Vec<Fit>> {
        self.devices
            .get(id)
            .map(|d| templates::rank(&self.templates, d))
    }

    /// Assigns a template by hand (`None`: back to automatic classification).
    pub fn assign(&mut self, id: &str, template: Option<&str>) -> Result<&Device, String> {
        if let Some(t) = template {
            if self.template(t).is_none() {
                return Err(format!(
                    "no template {t:?} (get_device_templates lists them)"
                ));
            }
        }
        let d = self
            .devices
            .get_mut(id)
            .ok_or_else(|| format!("no device {id:?}"))?;
        match template {
            Some(t) => {
                d.template = Some(t.to_owned());
                d.template_confidence = 1.0;
                d.template_hints = vec!["assigned by hand".into()];
                d.template_manual = true;
            }
            None => {
                d.template_manual = false;
                d.template = None;
            }
        }
        self.dirty.insert(id.to_owned());
        self.classify(id);
        Ok(&self.devices[id])
    }

    /// Sets or clears a hand-set criticality.
    pub fn set_criticality(&mut self, id: &str, level: Option<&str>) -> Result<(), String> {
        if let Some(l) = level {
            if !templates::CRITICALITIES.contains(&l) {
                return Err(format!(
                    "criticality: one of {}",
                    templates::CRITICALITIES.join(", ")
                ));
            }
        }
        let d = self
            .devices
            .get_mut(id)
            .ok_or_else(|| format!("no device {id:?}"))?;
        d.criticality = level.map(str::to_owned);
        self.dirty.insert(id.to_owned());
        Ok(())
    }

    /// Adds a label to the device holding `ip`; answers the device id.
    pub fn tag(&mut self, ip: std::net::IpAddr, tag: &str) -> Result<String, String> {
        let id = self
            .by_ip(ip)
            .map(|d| d.id.clone())
            .ok_or_else(|| format!("no device holds {ip}"))?;
        if let Some(d) = self.devices.get_mut(&id) {
            d.tags.insert(tag.to_owned());
        }
        self.dirty.insert(id.clone());
        Ok(id)
    }

    /// The criticality in force for a device: by hand, else its template's, else medium.
    pub fn criticality(&self, d: &Device) -> String {
        d.criticality
            .clone()
            .or_else(|| {
                d.template
                    .as_deref()
                    .and_then(|t| self.template(t))
                    .map(|t| t.criticality.clone())
            })
            .unwrap_or_else(|| "medium".into())
    }

    /// Assigns the best-fitting template unless one was assigned by hand.
    pub(super) fn classify(&mut self, id: &str) {
        let Some(d) = self.devices.get(id) else {
            return;
        };
        if d.template_manual {
            return;
        }
        let best = templates::rank(&self.templates, d)
            .into_iter()
            .next()
            .filter(|f| f.confidence >= templates::MIN_CONFIDENCE);
        if let Some(d) = self.devices.get_mut(id) {
            match best {
                Some(f) => {
                    d.template = Some(f.template);
                    d.template_confidence = f.confidence;
                    d.template_hints = f.hints;
                }
                None => {
                    d.template = None;
                    d.template_confidence = 0.0;
                    d.template_hints = Vec::new();
                }
            }
        }
    }
}

//! Distinct races: one report per unordered pair of code sites, counting its repetitions.

use std::collections::HashMap;

use super::model::{Access, Address, RaceReport, SiteId};

#[derive(Default)]
pub(crate) struct Reports {
    /// Index into `reports` by (smaller site, larger site).
    by_sites: HashMap<(SiteId, SiteId), usize>,
    reports: Vec<RaceReport>,
    instances: u64,
}

impl Reports {
    /// Counts one racing pair; returns its report if it is the first with these two sites.
    pub fn add(&mut self, map: Address, current: Access, previous: Access) -> Option<RaceReport> {
        self.instances += 1;
        let sites = (
            current.site.min(previous.site),
            current.site.max(previous.site),
        );
        if let Some(&at) = self.by_sites.get(&sites) {
            self.reports[at].count += 1;
            return None;
        }
        let report = RaceReport {
            map,
            current,
            previous,
            count: 1,
        };
        self.by_sites.insert(sites, self.reports.len());
        self.reports.push(report.clone());
        Some(report)
    }

    /// In order of first detection.
    pub fn all(&self) -> &[RaceReport] {
        &self.reports
    }

    pub fn instances(&self) -> u64 {
        self.instances
    }
}

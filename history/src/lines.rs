//! [`Lines`]: the line each event of a history was read from, in a few numbers.
//!
//! A file's events sit on consecutive lines but for the blank ones, so the lines are kept as
//! runs: where each run starts, and at which line. A history of millions of events read from
//! a file without blank lines is one run, rather than a number per event.

/// The line of each event, by its place in the history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    /// `(position, line)` for each event whose line does not follow the line of the event
    /// before it; in order of position, the first event's always among them.
    runs: Vec<(usize, usize)>,
    /// How many events have a line.
    len: usize,
}

impl Lines {
    /// Adds the line of the next event.
    pub(crate) fn push(&mut self, line: usize) {
        if self.len == 0 || self.get(self.len - 1).map(|last| last + 1) != Some(line) {
            self.runs.push((self.len, line));
        }
        self.len += 1;
    }

    /// The line of the event at `position`, if it has one.
    pub(crate) fn get(&self, position: usize) -> Option<usize> {
        if position >= self.len {
            return None;
        }
        // The last run that starts at or before `position`; the first starts at 0.
        let run = self.runs.partition_point(|&(start, _)| start <= position) - 1;
        let (start, line) = self.runs[run];
        Some(line + (position - start))
    }

    /// How many events have a line.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl FromIterator<usize> for Lines {
    fn from_iter<I: IntoIterator<Item = usize>>(lines: I) -> Self {
        let mut all = Lines::default();
        for line in lines {
            all.push(line);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_back_as_they_were_pushed() {
        let pushed = [1, 2, 3, 5, 6, 9, 4, 4];
        let lines: Lines = pushed.into_iter().collect();
        let read: Vec<_> = (0..pushed.len()).map(|i| lines.get(i).unwrap()).collect();
        assert_eq!(read, pushed);
        assert_eq!(lines.runs.len(), 5);
        assert_eq!((lines.len(), lines.get(pushed.len())), (8, None));
        assert_eq!(Lines::default().get(0), None);
    }
}

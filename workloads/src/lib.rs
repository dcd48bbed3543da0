//! Client operation generators and the HTTP client that records a history.

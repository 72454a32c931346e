//! Deterministic multicast network simulator.

"""The routing core: pure decision logic (no network, database or clock; time is passed in).

- `lead`: the normalised `Lead` and `parse_lead` (every problem at once, `InvalidLead`)
- `policy`: `load_policy` -> compiled `Policy` with its canonical digest (`PolicyError`)
- `engine`: `decide` (one lead -> `Decision`) and `refuse_invalid`
- `decision`: the `Decision` and its JSON (policy-spec.md)
- `rotation`: the `RotationState` protocol and `InMemoryRotationState`
- `screening`: the `Screener` protocol, `NullScreener`; `name_screening`: list matching
- `explain`: a decision told in words; `policy_tests`: a policy's own tests
- helpers: `jurisdictions`, `timezones`, `licensing`, `assignment`, `outreach`
"""

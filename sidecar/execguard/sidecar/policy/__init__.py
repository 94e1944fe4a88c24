"""Policy evaluation: the input document Rego sees, the decision it returns,
and the engines (embedded Rego, OPA server) behind one interface.

Exceptions raised by engines::

    PolicyError
    ├── PolicyCompileError      a module does not compile (module name, line)
    ├── PolicyUnavailable       the engine cannot be reached or is not loaded
    ├── PolicyEvaluationFailed  evaluation errored or ran past its time budget
    │   └── PolicyInputInvalid  the input is not a JSON document Rego can see
    └── PolicyDataInvalid       data not a JSON object, or data/modules over the size limit
"""

"""Support code of the tests: real servers, stand-ins and builders (no tests here)."""

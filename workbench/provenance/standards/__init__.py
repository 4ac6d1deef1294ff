"""The standards' signatures (X.509 certificates, C2PA, DICOM) and how they are reported."""

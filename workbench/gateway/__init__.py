"""The signing DICOM gateway: a Storage SCP at the moment of capture that fingerprints
and signs each instance as it arrives, answers the modality only once the record is
committed, and forwards the untouched instance to the PACS through a durable queue
(``workbench gateway``). Qt-free; pynetdicom is imported only here."""

"""DICOM Digital Signatures (PS3.15 Annex C, PS3.3 C.12.1.1.3), interoperable with DCMTK.

A DICOM signature lives *inside* the file: a Digital Signatures Sequence (FFFA,FFFA) item
holds the signer's X.509 certificate and an RSA signature of a MAC (a hash), and a MAC
Parameters Sequence (4FFE,0001) item, linked by the MAC ID Number, lists the attributes
the MAC covers (Data Elements Signed) and how they were encoded for it. Because the MAC
is computed over a canonical re-encoding (Explicit VR Little Endian), the signature
survives a change of transfer syntax (implicit VR, big endian) but not a change of any
signed value, and not a lossy or lossless re-compression of the pixel data.

Modules: parser (the stored bytes), mac (what the MAC covers), profiles (Base and Creator
RSA, purposes), sign, verify; tags holds the numbers they share.
"""

//! The output cap, enforced before a plugin's result is copied out of its linear memory.
//!
//! Every provider function's result is lifted as [`Bounded<T>`]. Its lift first lifts `T`'s
//! [`Output::Shape`]: the same WIT type with each string and list of strings lifted as
//! [`StrLen`] / [`StrListLen`], which read only the pointer and length the guest wrote (and, for a
//! list, its elements' lengths) and copy nothing. The shape's [`WireSize`] is the size `T` would
//! have in host memory, measured as the host types measure it; over the cap of the call running on
//! this thread ([`OutputCap`]) the lift fails with [`OutputLimitExceeded`] and nothing is copied.
//! Only then is `T` itself lifted. Both happen inside wasmtime's lift, before the guest's
//! post-return frees the memory (so a lift after the call would read freed memory).

use std::cell::Cell;

use wasmtime::ValRaw;
use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};

use super::wire::{FIELD, WireSize};

/// A plugin's result was over the output cap; nothing of it was copied into host memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the result is {size} bytes, over the {limit}-byte output cap")]
pub struct OutputLimitExceeded {
    pub size: usize,
    pub limit: usize,
}

/// A WIT result type whose strings can be measured before it is lifted.
pub(crate) trait Output: Lift {
    /// The same WIT type, lifted without copying: its `wire_size` is `Self`'s once lifted.
    type Shape: Lift + WireSize;
}

/// A result lifted only if its measured size is within the cap of the call on this thread.
pub(crate) struct Bounded<T>(pub T);

thread_local! {
    static CAP: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The output cap of the call running on this thread, set for the call's duration. A result lifted
/// on a thread without one is refused: the cap is never silently absent.
pub(crate) struct OutputCap {
    previous: Option<usize>,
}

impl OutputCap {
    pub(crate) fn set(limit: usize) -> Self {
        Self { previous: CAP.replace(Some(limit)) }
    }
}

impl Drop for OutputCap {
    fn drop(&mut self) {
        CAP.set(self.previous);
    }
}

fn check(size: usize) -> wasmtime::Result<()> {
    match CAP.get() {
        Some(limit) if size > limit => Err(OutputLimitExceeded { size, limit }.into()),
        Some(_) => Ok(()),
        None => wasmtime::bail!("a plugin result was lifted outside a call with an output cap"),
    }
}

// SAFETY: `Bounded<T>` has `T`'s ABI and lowered form and type-checks as `T` does; `typecheck`
// also checks `T::Shape` against the same WIT type and that both flatten to the same `ValRaw`s.
unsafe impl<T: Output> ComponentType for Bounded<T> {
    type Lower = T::Lower;
    const ABI: CanonicalAbiInfo = T::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        T::typecheck(ty, types)?;
        T::Shape::typecheck(ty, types)?;
        let same_flat = size_of::<T::Lower>() == size_of::<<T::Shape as ComponentType>::Lower>()
            && align_of::<T::Lower>() == align_of::<<T::Shape as ComponentType>::Lower>();
        if !same_flat || T::ABI != T::Shape::ABI {
            wasmtime::bail!("the measured shape of a result does not have the result's layout");
        }
        Ok(())
    }
}

// SAFETY: lifts `T` from exactly what it is given, after lifting the shape from the same source.
unsafe impl<T: Output> Lift for Bounded<T> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        // SAFETY: both lowered forms are the same sequence of `ValRaw`s for the same WIT type
        // (checked in `typecheck`, which `TypedFunc` creation requires).
        let shape_src = unsafe { &*(src as *const T::Lower).cast::<<T::Shape as ComponentType>::Lower>() };
        check(T::Shape::linear_lift_from_flat(cx, ty, shape_src)?.wire_size())?;
        T::linear_lift_from_flat(cx, ty, src).map(Bounded)
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        check(T::Shape::linear_lift_from_memory(cx, ty, bytes)?.wire_size())?;
        T::linear_lift_from_memory(cx, ty, bytes).map(Bounded)
    }
}

/// A `string`, measured: the bytes it would take as a host `String` (UTF-8; a UTF-16 code unit
/// counts 3, a Latin-1 byte 2, their worst case).
pub(crate) struct StrLen(usize);

impl StrLen {
    fn measure(cx: &LiftContext<'_>, len: u32) -> Self {
        const UTF16_TAG: u32 = 1 << 31;
        let (units, per_unit) = match cx.options().string_encoding {
            StringEncoding::Utf8 => (len, 1),
            StringEncoding::Utf16 => (len, 3),
            StringEncoding::CompactUtf16 if len & UTF16_TAG != 0 => (len ^ UTF16_TAG, 3),
            StringEncoding::CompactUtf16 => (len, 2),
        };
        Self(units as usize * per_unit)
    }
}

impl WireSize for StrLen {
    fn wire_size(&self) -> usize {
        self.0.saturating_add(FIELD)
    }
}

// SAFETY: a `string` is a pointer pair, as `str` declares.
unsafe impl ComponentType for StrLen {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <str as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads the length of the pointer pair; the string itself is not touched.
unsafe impl Lift for StrLen {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Ok(Self::measure(cx, src[1].get_u32()))
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (_, len) = pointer_pair(bytes)?;
        Ok(Self::measure(cx, len))
    }
}

/// A `list<string>`, measured: its strings' lengths are read from the guest's memory (the list's
/// own pointer pairs), the strings are not.
pub(crate) struct StrListLen(usize);

impl StrListLen {
    fn measure(cx: &LiftContext<'_>, ptr: u32, count: u32) -> wasmtime::Result<Self> {
        let memory = cx.memory();
        let Some(items) = (ptr as usize).checked_add(count as usize * 8).and_then(|end| memory.get(ptr as usize..end))
        else {
            wasmtime::bail!("list pointer/length out of bounds of memory");
        };
        let mut size = FIELD;
        for item in items.chunks_exact(8) {
            let (_, len) = pointer_pair(item)?;
            size = size.saturating_add(StrLen::measure(cx, len).wire_size());
        }
        Ok(Self(size))
    }
}

impl WireSize for StrListLen {
    fn wire_size(&self) -> usize {
        self.0
    }
}

// SAFETY: a `list<string>` is a pointer pair, as `[String]` declares.
unsafe impl ComponentType for StrListLen {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[String] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads the list's pointer pairs, bounds-checked against the guest's memory.
unsafe impl Lift for StrListLen {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Self::measure(cx, src[0].get_u32(), src[1].get_u32())
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, _ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (ptr, count) = pointer_pair(bytes)?;
        Self::measure(cx, ptr, count)
    }
}

/// A canonical-ABI pointer pair in memory: `(pointer, length)`, little-endian `u32`s.
fn pointer_pair(bytes: &[u8]) -> wasmtime::Result<(u32, u32)> {
    match bytes {
        [a, b, c, d, e, f, g, h, ..] => {
            Ok((u32::from_le_bytes([*a, *b, *c, *d]), u32::from_le_bytes([*e, *f, *g, *h])))
        }
        _ => wasmtime::bail!("pointer pair out of bounds"),
    }
}

/// A `list<u8>`, measured: its length only (a byte is a byte in host memory too).
pub(crate) struct BytesLen(usize);

impl WireSize for BytesLen {
    fn wire_size(&self) -> usize {
        self.0.saturating_add(FIELD)
    }
}

// SAFETY: a `list<u8>` is a pointer pair, as `[u8]` declares.
unsafe impl ComponentType for BytesLen {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads the length of the pointer pair; the bytes are not touched.
unsafe impl Lift for BytesLen {
    fn linear_lift_from_flat(
        _cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        Ok(Self(src[1].get_u32() as usize))
    }

    fn linear_lift_from_memory(_cx: &mut LiftContext<'_>, _ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (_, len) = pointer_pair(bytes)?;
        Ok(Self(len as usize))
    }
}

/// A `list<T>` of records, measured element by element where the guest wrote them (each as its
/// own measured shape `T`), without allocating the list.
pub(crate) struct ListLen<T>(usize, std::marker::PhantomData<fn() -> T>);

impl<T> WireSize for ListLen<T> {
    fn wire_size(&self) -> usize {
        self.0
    }
}

impl<T: Lift + WireSize> ListLen<T> {
    fn measure(cx: &mut LiftContext<'_>, ty: InterfaceType, ptr: u32, count: u32) -> wasmtime::Result<Self> {
        let InterfaceType::List(index) = ty else {
            wasmtime::bail!("a measured list lifted as another type");
        };
        let element = cx.types[index].element;
        let memory = cx.memory();
        let Some(items) = (ptr as usize)
            .checked_add((count as usize).saturating_mul(T::SIZE32))
            .and_then(|end| memory.get(ptr as usize..end))
        else {
            wasmtime::bail!("list pointer/length out of bounds of memory");
        };
        if !ptr.is_multiple_of(T::ALIGN32) {
            wasmtime::bail!("list pointer is not aligned");
        }
        let mut size = FIELD;
        for item in items.chunks_exact(T::SIZE32.max(1)) {
            size = size.saturating_add(T::linear_lift_from_memory(cx, element, item)?.wire_size());
        }
        Ok(Self(size, std::marker::PhantomData))
    }
}

// SAFETY: a `list<T>` is a pointer pair, as `[T]` declares; `typecheck` checks `T` as the element.
unsafe impl<T: ComponentType> ComponentType for ListLen<T> {
    type Lower = [ValRaw; 2];
    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[T] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: reads the list's elements within the guest's memory, bounds-checked, as `T` shapes.
unsafe impl<T: Lift + WireSize> Lift for ListLen<T> {
    fn linear_lift_from_flat(cx: &mut LiftContext<'_>, ty: InterfaceType, src: &Self::Lower) -> wasmtime::Result<Self> {
        Self::measure(cx, ty, src[0].get_u32(), src[1].get_u32())
    }

    fn linear_lift_from_memory(cx: &mut LiftContext<'_>, ty: InterfaceType, bytes: &[u8]) -> wasmtime::Result<Self> {
        let (ptr, count) = pointer_pair(bytes)?;
        Self::measure(cx, ty, ptr, count)
    }
}
